#!/usr/bin/python3
"""An ONVIF camera this project did not write: ipycam's (PyPI ipycam 1.3.0, MIT) ONVIF
device and media service, its HTTP handler and its WS-Discovery responder, fronting the
test's RTSP server. ipycam's video pipeline (numpy, OpenCV) is left out: only the modules
that speak ONVIF are loaded. Two test-side changes: the camera's clock can be set off by
CLOCK_SHIFT_S (GetSystemDateAndTime answers it; a real camera without NTP does this),
its name is written as cameras write it in their scopes (Test_Gate: a scope is one word),
and without --multicast the discovery responder listens on a loopback port of its own
instead of joining 239.255.255.250 (tests never multicast onto the host's network; the
--multicast run is inside a network namespace the test made).

usage: camera.py IPYCAM_DIR RTSP_PORT MAIN_PATH SUB_PATH USER PASSWORD CLOCK_SHIFT_S [--multicast]
Prints "READY HTTP_PORT DISCOVERY_PORT" and serves until stdin closes.
"""
import http.server
import socket
import sys
import threading
import time
import types

ipycam_dir, rtsp_port, main_path, sub_path, user, password, shift = sys.argv[1:8]
multicast = "--multicast" in sys.argv[8:]

# The package's __init__ imports the video pipeline; load its ONVIF modules alone.
package = types.ModuleType("ipycam")
package.__path__ = [ipycam_dir + "/ipycam"]
sys.modules["ipycam"] = package
streamer = types.ModuleType("ipycam.streamer")
streamer.StreamConfig = type("StreamConfig", (), {})
streamer.HWAccel = type("HWAccel", (), {"AUTO": "auto", "NVENC": "nvenc", "QSV": "qsv", "CPU": "cpu"})
sys.modules["ipycam.streamer"] = streamer

from ipycam.config import CameraConfig  # noqa: E402
from ipycam.discovery import WSDiscoveryServer  # noqa: E402
from ipycam.http import IPCameraHTTPHandler  # noqa: E402
from ipycam.onvif import ONVIFService  # noqa: E402


class ShiftedClock(ONVIFService):
    """The camera's clock is off by `shift` seconds."""

    def get_system_date_time(self):
        now = time.gmtime(time.time() + float(shift))
        body = self._render("get_system_date_time", hour=now.tm_hour, minute=now.tm_min,
                            second=now.tm_sec, year=now.tm_year, month=now.tm_mon, day=now.tm_mday)
        return self._wrap_envelope(body)


class LoopbackDiscovery(WSDiscoveryServer):
    """ipycam's responder on 127.0.0.1:PORT, without joining the multicast group and
    without announcing itself to it."""

    def __init__(self, onvif_service):
        threading.Thread.__init__(self, daemon=True)
        self.onvif = onvif_service
        self.running = True
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(1.0)

    def _send_announcement(self, action):
        pass


http_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), IPCameraHTTPHandler)
config = CameraConfig(name="Test_Gate", manufacturer="IPyCam", model="VirtualCam-1",
                      local_ip="127.0.0.1", onvif_port=http_server.server_address[1],
                      rtsp_port=int(rtsp_port), main_stream_name=main_path, sub_stream_name=sub_path,
                      main_width=640, main_height=360, main_fps=15, main_bitrate="1M",
                      sub_width=320, sub_height=180, sub_fps=10, sub_bitrate="256K")
config.set_credentials(user, password)
onvif = ShiftedClock(config)
IPCameraHTTPHandler.camera = types.SimpleNamespace(config=config, onvif=onvif)
discovery = WSDiscoveryServer(onvif) if multicast else LoopbackDiscovery(onvif)
discovery.start()
threading.Thread(target=http_server.serve_forever, daemon=True).start()
print(f"READY {http_server.server_address[1]} {discovery.sock.getsockname()[1]}", flush=True)
sys.stdin.read()
