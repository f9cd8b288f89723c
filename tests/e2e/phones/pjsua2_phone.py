#!/usr/bin/env python3
"""A PJSIP softphone (pjsua2 from PyPI `pjsua2-python`) for the end-to-end tests.

Registers one account, plays a sine tone into every call and records what it hears.
Commands come as JSON lines on stdin ({"command": "dial", "params": "sip:..."}; also
accept, hangup, hold, resume, sndcode (RFC 4733), sndinfo (SIP INFO), transfer (blind, to a URI), transfer_attended
(the first call to the last one, REFER with Replaces), and dial_late for an INVITE
without SDP); events
go out as JSON lines on stdout with the names baresip's ctrl_tcp uses (REGISTER_OK,
CALL_INCOMING, CALL_ESTABLISHED, CALL_CLOSED, CALL_DTMF_START, CALL_HELD, CALL_RESUMED;
TRANSFER_STATUS with the status a NOTIFY reported, and MWI with the body of a
message-summary NOTIFY: the phone subscribes to its box like a desk phone),
so the Rust harness treats every phone alike. Everything binds to 127.0.0.1; the
process ends on "quit", when stdin closes or after --lifetime seconds.
"""

import argparse
import json
import math
import os
import select
import struct
import sys
import time
import wave

import pjsua2 as pj

RATE = 8000


def emit(kind, param=""):
    sys.stdout.write(json.dumps({"type": kind, "param": param}) + "\n")
    sys.stdout.flush()


def write_tone(path, hz):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        # A whole number of periods, so the loop has no click.
        n = RATE * 2
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / RATE)))
                for i in range(n)
            )
        )


class Call(pj.Call):
    def __init__(self, phone, acc, call_id=pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.phone = phone
        self.recorder = None
        self.held_by_remote = False

    def onCallState(self, prm):
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED:
            emit("CALL_ESTABLISHED", ci.remoteUri)
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.close_recorder()
            emit("CALL_CLOSED", f"{ci.lastStatusCode} {ci.lastReason}")
            self.phone.forget(self)

    def onCallMediaState(self, prm):
        ci = self.getInfo()
        for i, m in enumerate(ci.media):
            if m.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if m.status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD:
                if not self.held_by_remote:
                    self.held_by_remote = True
                    emit("CALL_HELD")
                continue
            if m.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                if self.held_by_remote:
                    self.held_by_remote = False
                    emit("CALL_RESUMED")
                aud = self.getAudioMedia(i)
                self.phone.player.startTransmit(aud)
                if self.phone.conference:
                    self.phone.bridge(self, aud)
                if self.recorder is None:
                    self.phone.calls_recorded += 1
                    path = os.path.join(
                        self.phone.rec_dir, f"call-{self.phone.calls_recorded:03}-dec.wav"
                    )
                    self.recorder = pj.AudioMediaRecorder()
                    self.recorder.createRecorder(path)
                aud.startTransmit(self.recorder)

    def onDtmfDigit(self, prm):
        emit("CALL_DTMF_START", prm.digit)

    def onCallTransferStatus(self, prm):
        # NOTIFYs of a transfer this phone asked for (RFC 3515 sipfrag status).
        emit("TRANSFER_STATUS", str(prm.statusCode))

    def close_recorder(self):
        # The WAV header gets its lengths when the recorder is destroyed.
        if self.recorder is not None:
            del self.recorder
            self.recorder = None


class Buddy(pj.Buddy):
    # A buddy list entry: the presence of an extension or a parking slot (what a
    # softphone's busy lamps show).
    def onBuddyState(self):
        info = self.getInfo()
        emit("BUDDY", f"{info.uri} {info.presStatus.statusText}")


class Account(pj.Account):
    def __init__(self, phone):
        super().__init__()
        self.phone = phone

    def onRegState(self, prm):
        info = self.getInfo()
        if prm.code == 200 and info.regIsActive:
            emit("REGISTER_OK", str(prm.code))
        elif prm.code >= 300:
            emit("REGISTER_FAIL", f"{prm.code} {prm.reason}")

    def onMwiInfo(self, prm):
        # A message-summary NOTIFY (subscribed or unsolicited): its body, e.g.
        # "Messages-Waiting: yes ... Voice-Message: 1/0 (0/0)".
        msg = prm.rdata.wholeMsg
        body = msg.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in msg else ""
        emit("MWI", body)

    def onIncomingCall(self, prm):
        call = Call(self.phone, self, prm.callId)
        self.phone.calls.append(call)
        emit("CALL_INCOMING", call.getInfo().remoteUri)
        op = pj.CallOpParam()
        op.statusCode = 200 if self.phone.auto_answer else 180
        call.answer(op)


class Phone:
    def __init__(self, args):
        self.auto_answer = args.auto_answer
        self.rec_dir = args.rec_dir
        self.calls = []
        self.calls_recorded = 0
        self.conference = False
        self.buddies = []
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.userAgent = "pjsua2-e2e"
        cfg.logConfig.level = 5
        cfg.logConfig.consoleLevel = 0
        cfg.logConfig.filename = args.log
        cfg.medConfig.clockRate = RATE
        cfg.medConfig.sndClockRate = RATE
        cfg.medConfig.channelCount = 1
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        self.ep.libInit(cfg)
        t = pj.TransportConfig()
        t.port = args.sip_port
        t.boundAddress = "127.0.0.1"
        t.publicAddress = "127.0.0.1"
        if args.tls_ca:
            # SIP over TLS only, checking the box's certificate (name included)
            # against the CA the harness trusts.
            t.tlsConfig.CaListFile = args.tls_ca
            t.tlsConfig.verifyServer = True
            self.ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, t)
        else:
            self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, t)
        self.ep.audDevManager().setNullDev()
        self.ep.libStart()
        wanted = [c.strip() for c in args.codecs.split(",") if c.strip()]
        for c in self.ep.codecEnum2():
            name = c.codecId.split("/")[0]
            prio = 0
            if name in wanted:
                prio = 250 - wanted.index(name)
            self.ep.codecSetPriority(c.codecId, prio)
        tone = os.path.join(args.rec_dir, "..", "tone.wav")
        write_tone(tone, args.tone)
        self.player = pj.AudioMediaPlayer()
        self.player.createPlayer(tone)
        a = pj.AccountConfig()
        a.idUri = f"sip:{args.user}@{args.registrar}"
        suffix = ";transport=tls" if args.tls_ca else ""
        a.regConfig.registrarUri = f"sip:{args.registrar}{suffix}"
        if args.tls_ca:
            a.sipConfig.proxies.append(f"sip:{args.registrar};transport=tls;lr")
        a.regConfig.timeoutSec = 300
        a.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", args.user, 0, args.password))
        a.mediaConfig.transportConfig.port = args.rtp_port
        a.mediaConfig.transportConfig.portRange = args.rtp_range
        a.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        if args.srtp:
            # SRTP or no call; SDES keys go only over TLS (pjsua's secure signalling).
            a.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_MANDATORY
            a.mediaConfig.srtpSecureSignaling = 1
        a.natConfig.iceEnabled = False
        a.natConfig.sdpNatRewriteUse = 0
        a.natConfig.viaRewriteUse = 0
        a.natConfig.contactRewriteUse = 0
        a.natConfig.sipOutboundUse = 0
        # Like a desk phone: it subscribes to its voicemail box's message summary.
        a.mwiConfig.enabled = True
        a.mwiConfig.expirationSec = 600
        self.acc = Account(self)
        self.acc.create(a)

    def forget(self, call):
        if call in self.calls:
            self.calls.remove(call)

    def bridge(self, call, aud):
        # A three-way conference mixed on the phone: each call's party hears the
        # other's (and the phone's own tone).
        for other in self.calls:
            if other is call:
                continue
            try:
                o = other.getAudioMedia(-1)
            except pj.Error:
                continue
            aud.startTransmit(o)
            o.startTransmit(aud)

    def current(self):
        return self.calls[-1] if self.calls else None

    def command(self, cmd, params):
        op = pj.CallOpParam(True)
        call = self.current()
        if cmd in ("dial", "dial_late"):
            if cmd == "dial_late":
                # A late offer: INVITE without SDP, the answer goes in the ACK.
                op.opt.flag |= pj.PJSUA_CALL_NO_SDP_OFFER
            c = Call(self, self.acc)
            self.calls.append(c)
            c.makeCall(params, op)
        elif cmd == "accept" and call:
            op.statusCode = 200
            call.answer(op)
        elif cmd == "hangup" and call:
            call.hangup(op)
        elif cmd == "hold" and call:
            call.setHold(op)
        elif cmd == "resume" and call:
            op.opt.flag = pj.PJSUA_CALL_UNHOLD
            call.reinvite(op)
        elif cmd == "sndcode" and call:
            call.dialDtmf(params)
        elif cmd == "sndinfo" and call:
            # The digits by SIP INFO (application/dtmf-relay) instead of RFC 4733.
            p = pj.CallSendDtmfParam()
            p.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
            p.digits = params
            p.duration = 160
            call.sendDtmf(p)
        elif cmd == "transfer" and call:
            # Blind: REFER with Refer-To the number.
            call.xfer(params, op)
        elif cmd == "transfer_attended" and len(self.calls) >= 2:
            # Attended: the first call's party goes to the second call's, with
            # Replaces naming the second dialog.
            self.calls[0].xferReplaces(self.calls[-1], op)
        elif cmd == "conference" and len(self.calls) >= 2:
            # The conference key of a phone that mixes three-way calls itself: the
            # held call is resumed and the two calls' audio bridged on the phone.
            # The earlier calls are the held ones.
            self.conference = True
            for c in self.calls[:-1]:
                o = pj.CallOpParam(True)
                o.opt.flag = pj.PJSUA_CALL_UNHOLD
                c.reinvite(o)
            last = self.calls[-1]
            try:
                self.bridge(last, last.getAudioMedia(-1))
            except pj.Error:
                pass
        elif cmd == "watch":
            # SUBSCRIBE (Event: presence) to a URI; each NOTIFY becomes a BUDDY event.
            cfg = pj.BuddyConfig()
            cfg.uri = params
            cfg.subscribe = True
            b = Buddy()
            b.create(self.acc, cfg)
            self.buddies.append(b)
        elif cmd == "quit":
            return False
        else:
            emit("COMMAND_IGNORED", cmd)
        return True

    def run(self, lifetime):
        end = time.monotonic() + lifetime
        buf = b""
        fd = sys.stdin.fileno()
        while time.monotonic() < end:
            self.ep.libHandleEvents(10)
            r, _, _ = select.select([fd], [], [], 0)
            if not r:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                msg = json.loads(line)
                try:
                    if not self.command(msg.get("command"), msg.get("params", "")):
                        return
                except pj.Error as e:
                    emit("COMMAND_FAILED", f"{msg.get('command')}: {e.info()}")

    def close(self):
        for c in list(self.calls):
            c.close_recorder()
        self.calls = []
        self.player = None
        self.acc = None
        self.ep.libDestroy()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--registrar", required=True, help="host:port of pbxd")
    p.add_argument("--sip-port", type=int, required=True)
    p.add_argument("--rtp-port", type=int, required=True)
    p.add_argument("--rtp-range", type=int, default=38)
    p.add_argument("--tone", type=int, required=True)
    p.add_argument("--codecs", default="PCMU,PCMA")
    p.add_argument("--auto-answer", action="store_true")
    p.add_argument("--tls-ca", help="register and call over TLS, trusting this CA")
    p.add_argument("--srtp", action="store_true", help="audio over SRTP only (SDES keys)")
    p.add_argument("--rec-dir", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--lifetime", type=float, default=300)
    args = p.parse_args()
    phone = Phone(args)
    try:
        phone.run(args.lifetime)
    finally:
        phone.close()


if __name__ == "__main__":
    main()
