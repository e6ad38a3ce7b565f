// The server status view: /status and a few Prometheus metrics, polled every 2 seconds.
"use strict";

const POLL_MS = 2000;

// "name{labels} value" lines of the Prometheus text format → [{name, labels, value}].
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match !== null) {
      samples.push({ name: match[1], labels: match[2] || "", value: Number(match[3]) });
    }
  }
  return samples;
}

function total(samples, name) {
  return samples.filter((s) => s.name === name).reduce((sum, s) => sum + s.value, 0);
}

function byLabel(samples, name, label) {
  const parts = [];
  for (const s of samples.filter((x) => x.name === name)) {
    const match = new RegExp(`${label}="([^"]*)"`).exec(s.labels);
    parts.push(`${match ? match[1] : "?"} ${s.value}`);
  }
  return parts.length ? parts.join(", ") : "none";
}

function meanMs(samples, histogram) {
  const count = total(samples, `${histogram}_count`);
  if (count === 0) {
    return "no turns yet";
  }
  return `${Math.round((total(samples, `${histogram}_sum`) / count) * 1000)} ms on average`;
}

function statusRows(status, samples) {
  const components = Object.entries(status.components || {})
    .map(([name, c]) => `${name} ${c.state}`)
    .join(", ");
  return [
    ["Status", `${status.status}, version ${status.version}`],
    ["Active turns", `${status.active_turns} of ${status.limits.max_concurrent_turns}`],
    ["Components", components],
    ["Turns finished", byLabel(samples, "nexy_turns_total", "outcome")],
    ["First text", meanMs(samples, "nexy_time_to_first_text_seconds")],
    ["First audio", meanMs(samples, "nexy_time_to_first_audio_seconds")],
    ["Refused at admission", String(total(samples, "nexy_rejections_total"))],
    ["Stream errors", byLabel(samples, "nexy_stream_errors_total", "status")],
    ["Uptime", `${Math.round(status.uptime_seconds)} s`],
  ];
}

function showRows(list, rows) {
  list.replaceChildren();
  for (const [term, value] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  }
}

function startStatusView(list, error) {
  async function poll() {
    if (document.hidden) {
      return; // nobody is looking: spare the server
    }
    try {
      const [status, metrics] = await Promise.all([
        fetch("/status").then((r) => r.json()),
        fetch("/metrics").then((r) => r.text()),
      ]);
      showRows(list, statusRows(status, parseMetrics(metrics)));
      list.dataset.updated = String(Date.now());
      error.textContent = "";
    } catch (exc) {
      error.textContent = `The server did not answer: ${exc.message}`;
    }
  }
  poll();
  return window.setInterval(poll, POLL_MS);
}

window.startStatusView = startStatusView;
