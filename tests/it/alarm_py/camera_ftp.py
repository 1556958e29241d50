"""A camera that uploads its alarm pictures by FTP, as many do: Python's ftplib, not code of
sentrix. Each subcommand prints one JSON line with what the server answered.

  upload HOST PORT USER PASSWORD GAP_S [--tls CAFILE] JPEG...   passive STORs, GAP_S apart
  stor_as HOST PORT USER PASSWORD REMOTE_PATH FILE              one STOR to REMOTE_PATH
  login HOST PORT USER PASSWORD                                 the login's reply code
"""
import ftplib
import json
import ssl
import sys
import time


def connect(host, port, user, password, cafile=None):
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = False
        f = ftplib.FTP_TLS(context=ctx, timeout=30)
    else:
        f = ftplib.FTP(timeout=30)
    f.connect(host, int(port))
    f.login(user, password)
    if cafile:
        f.prot_p()
    f.set_pasv(True)
    return f


def code_of(e):
    return int(str(e)[:3])


def upload(args):
    host, port, user, password, gap = args[:5]
    rest = args[5:]
    cafile = None
    if rest and rest[0] == "--tls":
        cafile, rest = rest[1], rest[2:]
    f = connect(host, port, user, password, cafile)
    f.mkd("alarm")
    f.cwd("alarm")
    codes = []
    for n, path in enumerate(rest):
        if n:
            time.sleep(float(gap))
        with open(path, "rb") as fh:
            codes.append(int(f.storbinary("STOR pic%d.jpg" % n, fh)[:3]))
    f.quit()
    print(json.dumps({"codes": codes}))


def stor_as(args):
    host, port, user, password, remote, path = args
    f = connect(host, port, user, password)
    try:
        with open(path, "rb") as fh:
            code = int(f.storbinary("STOR " + remote, fh)[:3])
    except ftplib.error_perm as e:
        code = code_of(e)
    except OSError:
        # The server refused the path before taking the data: its reply is on the
        # control connection.
        try:
            code = int(f.getresp()[:3])
        except ftplib.error_perm as e:
            code = code_of(e)
    print(json.dumps({"code": code}))


def login(args):
    try:
        f = connect(*args)
        f.quit()
        code = 230
    except ftplib.error_perm as e:
        code = code_of(e)
    except ftplib.error_temp as e:
        code = code_of(e)
    print(json.dumps({"code": code}))


if __name__ == "__main__":
    {"upload": upload, "stor_as": stor_as, "login": login}[sys.argv[1]](sys.argv[2:])
