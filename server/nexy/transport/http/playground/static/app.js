// The playground page: one turn per WebSocket (/playground/ws), the device's memory, status.
// Message shapes: docs/GRPC_PROTOCOL.md, "Browser endpoint (playground)".
"use strict";

const DEVICE_KEY = "nexy-playground-device";
const MEMORY_POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

// crypto.randomUUID exists only in secure contexts; a LAN address over http is not one.
function newUuid() {
  if (window.crypto.randomUUID) {
    return window.crypto.randomUUID();
  }
  const b = window.crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-` +
    `${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function authHeaders() {
  const token = $("token").value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// The image as base64 without its "data:…;base64," prefix, or null.
function readImage() {
  const file = $("image").files[0];
  if (!file) {
    return Promise.resolve(null);
  }
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

class Turn {
  constructor(player) {
    this.player = player;
    this.socket = null;
  }

  async send(prompt, device) {
    const request = { prompt, hardware_id: device, session_id: newUuid() };
    const image = await readImage();
    if (image) {
      request.screenshot = image;
    }
    const token = $("token").value.trim();
    if (token) {
      request.token = token; // a browser cannot set headers on a WebSocket
    }
    this.started = performance.now();
    this.firstText = null;
    this.firstAudio = null;
    this.finished = false;
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${window.location.host}/playground/ws`);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => socket.send(JSON.stringify(request));
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = () => this.closed();
    this.socket = socket;
    setState("running", "Waiting for the reply…");
  }

  interrupt() {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: "interrupt" }));
    }
    this.player.stop();
  }

  since() {
    return `${Math.round(performance.now() - this.started)} ms`;
  }

  receive(data) {
    if (data instanceof ArrayBuffer) {
      if (this.firstAudio === null) {
        this.firstAudio = this.since();
        $("first-audio").textContent = this.firstAudio;
      }
      this.player.push(data);
      return;
    }
    const message = JSON.parse(data);
    if (message.type === "text_chunk") {
      if (this.firstText === null) {
        this.firstText = this.since();
        $("first-text").textContent = this.firstText;
      }
      $("reply").textContent += message.text;
    } else if (message.type === "audio_format") {
      this.player.setFormat(message.sample_rate);
    } else if (message.type === "action_message") {
      $("action").textContent = JSON.stringify(message.action);
      $("action").dataset.command = message.action.command || "";
    } else if (message.type === "end_message") {
      this.end("ended", `Done (${message.message}).`);
    } else if (message.type === "error_message") {
      this.end("error", `Error ${message.code}: ${message.message}`);
    }
  }

  end(state, text) {
    this.finished = true;
    $("end-time").textContent = this.since();
    setState(state, text);
    refreshMemory();
  }

  closed() {
    if (!this.finished) {
      setState("error", "The connection closed before the turn ended.");
    }
    $("send").disabled = false;
    const hadFocus = document.activeElement === $("stop");
    $("stop").disabled = true;
    if (hadFocus) {
      $("prompt").focus(); // a disabled button drops keyboard focus on the floor
    }
  }
}

function setState(state, text) {
  const status = $("turn-status");
  status.dataset.state = state;
  status.textContent = text;
}

function clearReply() {
  $("reply").textContent = "";
  $("action").textContent = "none";
  $("action").dataset.command = "";
  for (const id of ["first-text", "first-audio", "end-time"]) {
    $(id).textContent = "–";
  }
}

function fillList(list, items) {
  list.replaceChildren();
  for (const text of items) {
    const item = document.createElement("li");
    item.textContent = text;
    list.append(item);
  }
  if (items.length === 0) {
    const item = document.createElement("li");
    item.textContent = "nothing";
    list.append(item);
  }
}

async function memoryCall(url, options) {
  const response = await fetch(url, { ...options, headers: { ...authHeaders(), ...options.headers } });
  const body = await response.json();
  if (!response.ok) {
    throw new Error(`${body.code}: ${body.message}`);
  }
  return body;
}

let shownMemory = "";

// Also polled: a turn's memory update is written just after its end message.
async function refreshMemory() {
  if (document.hidden) {
    return;
  }
  const device = $("device").value.trim();
  const note = $("memory-status");
  try {
    const body = await memoryCall(
      `/playground/api/memory?hardware_id=${encodeURIComponent(device)}`, { headers: {} });
    const seen = JSON.stringify(body);
    if (seen === shownMemory) {
      return; // unchanged: keep the lists as they are for someone reading them
    }
    shownMemory = seen;
    fillList($("facts"), body.facts);
    fillList($("recent"), body.recent.map((e) => `You: ${e.user} — Nexy: ${e.assistant}`));
    note.textContent = `${body.facts.length} facts, ${body.recent.length} recent exchanges.`;
  } catch (exc) {
    shownMemory = "";
    note.textContent = `Memory unavailable: ${exc.message}`;
  }
}

async function forgetAll() {
  const note = $("memory-status");
  try {
    const body = await memoryCall("/playground/api/forget", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ hardware_id: $("device").value.trim() }),
    });
    await refreshMemory();
    note.textContent = `Forgotten: ${body.facts_removed} facts and the recent exchanges.`;
  } catch (exc) {
    note.textContent = `Forgetting failed: ${exc.message}`;
  }
}

function setUp() {
  const player = new window.PcmPlayer($("audio"));
  const turn = new Turn(player);
  const device = $("device");
  device.value = window.localStorage.getItem(DEVICE_KEY) || newUuid();
  window.localStorage.setItem(DEVICE_KEY, device.value);
  device.addEventListener("change", () => {
    window.localStorage.setItem(DEVICE_KEY, device.value.trim());
    refreshMemory();
  });
  $("new-device").addEventListener("click", () => {
    device.value = newUuid();
    window.localStorage.setItem(DEVICE_KEY, device.value);
    refreshMemory();
  });
  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    player.unlock();
    player.reset();
    clearReply();
    $("send").disabled = true;
    $("stop").disabled = false;
    $("stop").focus(); // the focused Send button is being disabled
    turn.send($("prompt").value, device.value.trim()).catch((exc) => {
      setState("error", `Could not send: ${exc.message}`);
      turn.closed();
    });
  });
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      $("ask-form").requestSubmit();
    }
  });
  $("stop").addEventListener("click", () => turn.interrupt());
  $("memory-refresh").addEventListener("click", refreshMemory);
  $("forget").addEventListener("click", forgetAll);
  refreshMemory();
  window.setInterval(refreshMemory, MEMORY_POLL_MS);
  window.startStatusView($("server-status"), $("server-error"));
}

document.addEventListener("DOMContentLoaded", setUp);
