#!/usr/bin/env bash
# Installs what the tests need (system packages for the RTSP and RTMP servers and Debian's chromium for
# the web app, the package with its test and serve extras) and runs lint and the test suite. The README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
/usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' 2>/dev/null || need_apt+=(python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gstreamer-1.0)
gst-inspect-1.0 x264enc >/dev/null 2>&1 || need_apt+=(gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-libav)
ldconfig -p | grep -q libGL.so.1 || need_apt+=(libgl1 libglib2.0-0)
command -v Xvfb >/dev/null && command -v xdotool >/dev/null || need_apt+=(xvfb xauth xdotool)
[ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || need_apt+=(nginx-core libnginx-mod-rtmp)
command -v chromium >/dev/null && command -v chromedriver >/dev/null || need_apt+=(chromium chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

python3 -m pip install -q -e ".[torch,test,onnx,serve,cluster]"
python3 -m ruff check .
python3 -m pytest "$@"
