// nstream's live view: the webcam to the server over WebRTC and the stylized stream back, the style
// buttons and the live figures. Uses POST/GET/DELETE /api/live and POST /api/live/{id}/style.
"use strict";

const live = { pc: null, id: null, stream: null, timer: null, styles: [], names: new Map(), received: null };
window.nstreamLive = live;  // for tests and benchmarks: the connection and the latest figures

document.addEventListener("nstream:styles", (event) => {
  for (const style of event.detail.styles) live.names.set(style.id, style.name);
  if (!event.detail.live) {
    document.getElementById("live-start").disabled = true;
    document.getElementById("live-error").textContent = "live needs aiortc on the server: pip install 'nstream[serve]'";
  }
});

function liveSay(state, error = "") {
  document.getElementById("live-state").textContent = state;
  document.getElementById("live-error").textContent = error;
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", check); resolve(); } };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(resolve, 3000);  // no STUN here: host candidates come at once
  });
}

async function liveStart() {
  const startButton = document.getElementById("live-start");
  startButton.disabled = true;
  liveSay("starting camera");
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: false });
    document.getElementById("local").srcObject = live.stream;
    const pc = new RTCPeerConnection({ iceServers: [] });
    live.pc = pc;
    pc.addTransceiver(live.stream.getVideoTracks()[0], { direction: "sendrecv", streams: [live.stream] });
    pc.addEventListener("track", (event) => {
      document.getElementById("remote").srcObject = new MediaStream([event.track]);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    liveSay("connecting");
    const response = await fetch("/api/live", { method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }) });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    live.id = answer.id;
    await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
    answer.styles.forEach((id, index) => live.names.set(id, answer.names[index]));
    liveButtons(answer.styles);
    document.getElementById("live-stop").disabled = false;
    live.timer = setInterval(liveFigures, 1000);
  } catch (exc) {
    await liveStop(exc.message);
  }
}

function liveButtons(styles) {
  live.styles = styles;
  const box = document.getElementById("live-styles");
  box.replaceChildren(...styles.map((id, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.index = String(index);
    button.textContent = live.names.get(id) || id;
    button.addEventListener("click", () => liveSelect(index));
    return button;
  }));
  liveActive(0);
}

function liveActive(index) {
  for (const button of document.getElementById("live-styles").children) {
    button.classList.toggle("active", Number(button.dataset.index) === index);
  }
}

async function liveSelect(index) {
  if (!live.id) return;
  const response = await fetch(`/api/live/${live.id}/style`, { method: "POST", credentials: "same-origin",
    headers: { "content-type": "application/json" }, body: JSON.stringify({ index }) });
  const body = await response.json();
  if (!response.ok) { liveSay("running", body.error); return; }
  liveActive(body.active);
}

async function receivedFps() {
  if (!live.pc) return null;
  const report = await live.pc.getStats();
  let fps = null;
  report.forEach((entry) => { if (entry.type === "inbound-rtp" && entry.kind === "video") fps = entry.framesPerSecond ?? null; });
  return fps;
}

async function liveFigures() {
  if (!live.id) return;
  const response = await fetch(`/api/live/${live.id}`, { credentials: "same-origin" });
  if (!response.ok) return;
  const status = await response.json();
  live.status = status;
  live.received = await receivedFps();
  const figures = status.figures || {};
  const text = (value, unit = "") => (value == null ? "-" : `${value}${unit}`);
  document.getElementById("fig-fps").textContent = text(figures.fps);
  document.getElementById("fig-p50").textContent = text(figures.latency_ms && figures.latency_ms.p50, " ms");
  document.getElementById("fig-p95").textContent = text(figures.latency_ms && figures.latency_ms.p95, " ms");
  document.getElementById("fig-dropped").textContent = text(figures.dropped);
  document.getElementById("fig-received").textContent = text(live.received);
  const active = status.styles[status.active];
  document.getElementById("fig-style").textContent = figures.style ? (live.names.get(active) || active) : "-";
  liveSay(status.state, status.error || "");
  if (status.state === "running") liveActive(status.active);
  if (status.state === "failed" || status.state === "ended") await liveStop(status.error || "");
}

async function liveStop(error = "") {
  clearInterval(live.timer);
  live.timer = null;
  if (live.id) {
    fetch(`/api/live/${live.id}`, { method: "DELETE", credentials: "same-origin" });
    live.id = null;
  }
  if (live.pc) { live.pc.close(); live.pc = null; }
  if (live.stream) { for (const track of live.stream.getTracks()) track.stop(); live.stream = null; }
  document.getElementById("live-stop").disabled = true;
  document.getElementById("live-start").disabled = false;
  liveSay("off", error);
}

document.getElementById("live-start").addEventListener("click", liveStart);
document.getElementById("live-stop").addEventListener("click", () => liveStop());
window.addEventListener("pagehide", () => { if (live.id) navigator.sendBeacon && liveStop(); });
