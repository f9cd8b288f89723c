/* Flattens libpri's event union into one plain structure, so the Rust side of this
 * test-only harness does not depend on the union's layout. */
#include <libpri.h>
#include <string.h>

struct shim_event {
	int e;
	int channel;
	int cause;
	int complete;
	int flexible;
	q931_call *call;
	char called[64];
	char calling[64];
};

static void copy(char *dst, const char *src)
{
	strncpy(dst, src, 63);
	dst[63] = 0;
}

void shim_event(const pri_event *ev, struct shim_event *o)
{
	memset(o, 0, sizeof(*o));
	o->e = ev->e;
	o->channel = -1;
	switch (ev->e) {
	case PRI_EVENT_RING:
	case PRI_EVENT_INFO_RECEIVED:
		o->channel = ev->ring.channel;
		o->call = ev->ring.call;
		o->complete = ev->ring.complete;
		o->flexible = ev->ring.flexible;
		copy(o->called, ev->ring.callednum);
		copy(o->calling, ev->ring.callingnum);
		break;
	case PRI_EVENT_HANGUP:
	case PRI_EVENT_HANGUP_REQ:
	case PRI_EVENT_HANGUP_ACK:
		o->channel = ev->hangup.channel;
		o->cause = ev->hangup.cause;
		o->call = ev->hangup.call;
		break;
	case PRI_EVENT_RINGING:
		o->channel = ev->ringing.channel;
		o->call = ev->ringing.call;
		break;
	case PRI_EVENT_ANSWER:
		o->channel = ev->answer.channel;
		o->call = ev->answer.call;
		break;
	case PRI_EVENT_PROCEEDING:
	case PRI_EVENT_PROGRESS:
		o->channel = ev->proceeding.channel;
		o->call = ev->proceeding.call;
		o->cause = ev->proceeding.cause;
		break;
	case PRI_EVENT_SETUP_ACK:
		o->channel = ev->setup_ack.channel;
		o->call = ev->setup_ack.call;
		break;
	case PRI_EVENT_RESTART:
		o->channel = ev->restart.channel;
		break;
	case PRI_EVENT_RESTART_ACK:
		o->channel = ev->restartack.channel;
		break;
	case PRI_EVENT_CONNECT_ACK:
		o->channel = ev->connect_ack.channel;
		o->call = ev->connect_ack.call;
		break;
	case PRI_EVENT_KEYPAD_DIGIT:
		o->channel = ev->digit.channel;
		o->call = ev->digit.call;
		copy(o->called, ev->digit.digits);
		break;
	}
}
