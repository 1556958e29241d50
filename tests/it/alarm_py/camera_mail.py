"""A camera that e-mails its alarm pictures, as cheap cameras do: Python's smtplib, not
code of sentrix. Each subcommand prints one JSON line with what the server answered.

  send HOST PORT TO [--tls CAFILE] [--user U --password P] [--subject S] [--source IP] JPEG...
  plain_auth HOST PORT          AUTH before STARTTLS: the server's code
  recipients HOST PORT N        N unknown recipients: how many were answered
  big HOST PORT TO MB           a message of MB megabytes: the final code
  raw HOST PORT TO KIND         a hostile message (parts, nesting, truncated): the code
"""
import json
import smtplib
import socket
import ssl
import sys
import time
from email.message import EmailMessage


def connect(host, port, cafile=None, source=None):
    s = smtplib.SMTP(host, int(port), timeout=30,
                     source_address=(source, 0) if source else None)
    s.ehlo("camera.test")
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = False
        s.starttls(context=ctx)
        s.ehlo("camera.test")
    return s


def send(args):
    host, port, to = args[0], args[1], args[2]
    opts, files, i = {}, [], 3
    while i < len(args):
        if args[i].startswith("--"):
            opts[args[i][2:]] = args[i + 1]
            i += 2
        else:
            files.append(args[i])
            i += 1
    msg = EmailMessage()
    msg["From"] = "camera@cams.test"
    msg["To"] = to
    msg["Subject"] = opts.get("subject", "Alarm")
    msg.set_content("Motion detected")
    types = {".mp4": ("video", "mp4"), ".avi": ("video", "x-msvideo")}
    for n, f in enumerate(files):
        kind = types.get(f[f.rfind("."):], ("image", "jpeg"))
        with open(f, "rb") as fh:
            msg.add_attachment(fh.read(), maintype=kind[0], subtype=kind[1],
                               filename="part%d%s" % (n, f[f.rfind("."):]))
    out = {}
    try:
        s = connect(host, port, opts.get("tls"), opts.get("source"))
        if "user" in opts:
            out["auth"] = s.login(opts["user"], opts["password"])[0]
        started = time.time()
        refused = s.send_message(msg)
        out["sent_at"] = time.time()
        out["data_s"] = out["sent_at"] - started
        out["refused"] = {k: v[0] for k, v in refused.items()}
        out["code"] = 250
        s.quit()
    except smtplib.SMTPRecipientsRefused as e:
        out["code"] = list(e.recipients.values())[0][0]
    except smtplib.SMTPResponseException as e:
        out["code"] = e.smtp_code
        out["message"] = e.smtp_error.decode(errors="replace")
    print(json.dumps(out))


def plain_auth(args):
    s = connect(args[0], args[1])
    code, _ = s.docmd("AUTH", "PLAIN AGRvb3IAd3Jvbmc=")
    print(json.dumps({"code": code, "advertised": s.has_extn("auth")}))


def recipients(args):
    s = connect(args[0], args[1])
    s.mail("camera@cams.test")
    answered = 0
    codes = set()
    try:
        for n in range(int(args[2])):
            code, _ = s.rcpt("nobody%d@cams.test" % n)
            answered += 1
            codes.add(code)
            if code == 421:
                break
    except smtplib.SMTPServerDisconnected:
        pass
    print(json.dumps({"answered": answered, "codes": sorted(codes)}))


def big(args):
    host, port, to, mb = args[0], int(args[1]), args[2], int(args[3])
    sock = socket.create_connection((host, port), timeout=60)
    f = sock.makefile("rb")

    def cmd(line):
        sock.sendall(line.encode() + b"\r\n")
        reply = f.readline()
        while reply[3:4] == b"-":
            reply = f.readline()
        return int(reply[:3])

    f.readline()
    cmd("EHLO camera.test")
    cmd("MAIL FROM:<camera@cams.test>")
    cmd("RCPT TO:<%s>" % to)
    assert cmd("DATA") == 354
    line = b"x" * 998 + b"\r\n"
    chunk = line * 1024
    started = time.time()
    for _ in range(mb * 1024 * 1024 // len(chunk)):
        sock.sendall(chunk)
    code = cmd(".")
    print(json.dumps({"code": code, "seconds": time.time() - started}))


def hostile_message(kind, jpeg):
    head = "From: camera@cams.test\r\nSubject: Alarm\r\nMIME-Version: 1.0\r\n"
    if kind == "parts":
        body = "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        body += "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 10000 + "--b--\r\n"
    elif kind == "nesting":
        body = "".join("Content-Type: multipart/mixed; boundary=n%d\r\n\r\n--n%d\r\n" % (i, i)
                       for i in range(5000))
        body += "Content-Type: text/plain\r\n\r\nx\r\n"
    else:  # truncated: a JPEG whose base64 stops mid-way
        import base64
        b64 = base64.b64encode(jpeg).decode()
        cut = b64[: len(b64) // 2 + 3]
        lines = "\r\n".join(cut[i:i + 76] for i in range(0, len(cut), 76))
        body = ("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                "Content-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + lines + "\r\n--b--\r\n")
    return head + body


def raw(args):
    host, port, to, kind = args[:4]
    jpeg = open(args[4], "rb").read() if len(args) > 4 else b""
    s = connect(host, port)
    try:
        s.sendmail("camera@cams.test", [to], hostile_message(kind, jpeg))
        code, message = 250, ""
    except smtplib.SMTPResponseException as e:
        code, message = e.smtp_code, e.smtp_error.decode(errors="replace")
    print(json.dumps({"code": code, "message": message}))


if __name__ == "__main__":
    {"send": send, "plain_auth": plain_auth, "recipients": recipients,
     "big": big, "raw": raw}[sys.argv[1]](sys.argv[2:])
