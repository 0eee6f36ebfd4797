// lure's console: edit the task root's scripts, keep test events, invoke.
// Served by `lure serve` at /_lure/ with nothing from elsewhere.
"use strict";

const api = "/_lure/api";
const $ = (id) => document.getElementById(id);
let current = null; // the open file's path
let saved = ""; // its text as last saved

// --- Highlighting: a textarea over a <pre> of the same text, tokens coloured. ---

const KEYWORDS = {
  lua: "and break do else elseif end false for function goto if in local nil not or repeat return then true until while",
  rhai: "let const fn if else while loop for in do until break continue return throw try catch import export as private true false switch global this",
  json: "true false null",
};

// One pass over the text: comments, strings, numbers, words.
const TOKENS = {
  lua: /(--\[(=*)\[[\s\S]*?\]\2\]|--[^\n]*)|("(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?|\[(=*)\[[\s\S]*?\]\4\])|(\b0x[0-9a-fA-F]+\b|\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b)|([A-Za-z_]\w*)/g,
  rhai: /(\/\/[^\n]*|\/\*[\s\S]*?\*\/)|("(?:\\.|[^"\\])*"?|`[^`]*`?|'(?:\\.|[^'\\])')|(\b0x[0-9a-fA-F_]+\b|\b\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?\b)|([A-Za-z_]\w*)/g,
  json: /()("(?:\\.|[^"\\])*"?)|(-?\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b)|([A-Za-z_]\w*)/g,
};

function escapeHtml(text) {
  return text.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);
}

function language(path) {
  const ext = (path || "").split(".").pop();
  return ext in KEYWORDS ? ext : "json";
}

function highlight(text, lang) {
  const keywords = new Set(KEYWORDS[lang].split(" "));
  const pattern = new RegExp(TOKENS[lang].source, "g");
  let html = "";
  let at = 0;
  for (const m of text.matchAll(pattern)) {
    html += escapeHtml(text.slice(at, m.index));
    const token = escapeHtml(m[0]);
    if (m[1]) html += `<span class="tok-c">${token}</span>`;
    else if (lang === "lua" ? m[3] : m[2]) html += `<span class="tok-s">${token}</span>`;
    else if (lang === "lua" ? m[5] : m[3]) html += `<span class="tok-n">${token}</span>`;
    else if (keywords.has(m[0])) html += `<span class="tok-k">${token}</span>`;
    else html += token;
    at = m.index + m[0].length;
  }
  return html + escapeHtml(text.slice(at)) + "\n";
}

function render() {
  const source = $("source");
  const text = source.value;
  $("highlight").innerHTML = highlight(text, language(current));
  const lines = text.split("\n").length;
  $("gutter").textContent = Array.from({ length: lines }, (_, i) => i + 1).join("\n");
  // The layers grow with the text, so the editor box scrolls them together.
  const height = `${(lines + 1) * 1.5}em`;
  source.style.minHeight = height;
  $("highlight").style.minHeight = height;
  $("save").disabled = current === null || text === saved;
}

// --- Talking to serve ---

function status(text, bad) {
  const el = $("status");
  el.textContent = text;
  el.style.color = bad ? "var(--bad)" : "";
}

async function call(method, path, body) {
  const response = await fetch(api + path, {
    method,
    body,
    headers: body === undefined ? {} : { "Content-Type": "text/plain" },
  });
  if (!response.ok) {
    let message = `${response.status}`;
    try {
      message = (await response.json()).error || message;
    } catch (_) {
      // not JSON: the status says enough
    }
    throw new Error(message);
  }
  return response;
}

const encodePath = (path) => path.split("/").map(encodeURIComponent).join("/");

async function openFile(path) {
  if (current !== null && $("source").value !== saved && !confirm(`Discard the changes to ${current}?`)) {
    return;
  }
  const text = await (await call("GET", `/files/${encodePath(path)}`)).text();
  current = path;
  saved = text;
  $("source").value = text;
  $("file-name").textContent = path;
  for (const button of document.querySelectorAll("#files button")) {
    button.setAttribute("aria-current", String(button.dataset.path === path));
  }
  render();
}

async function saveFile() {
  const text = $("source").value;
  await call("PUT", `/files/${encodePath(current)}`, text);
  saved = text;
  render();
  status(`Saved ${current}: the next invocation runs it`);
}

function fillEvents(state, pick) {
  const select = $("event-pick");
  select.replaceChildren();
  const group = (label, items, kind) => {
    const og = document.createElement("optgroup");
    og.label = label;
    for (const name of items) {
      const option = document.createElement("option");
      option.value = `${kind}:${name}`;
      option.textContent = name;
      og.append(option);
    }
    select.append(og);
  };
  group("Saved events", state.events, "event");
  group("Templates", state.templates, "template");
  if (pick) select.value = pick;
}

async function pickEvent() {
  const [kind, ...rest] = $("event-pick").value.split(":");
  const name = rest.join(":");
  if (!name) return;
  const path = kind === "event" ? `/events/${encodeURIComponent(name)}` : `/templates/${encodeURIComponent(name)}`;
  $("event").value = await (await call("GET", path)).text();
  $("event-name").value = kind === "event" ? name : "";
}

async function saveEvent() {
  const name = $("event-name").value.trim();
  if (!name) {
    status("Name the event first", true);
    return;
  }
  await call("PUT", `/events/${encodeURIComponent(name)}`, $("event").value);
  const state = await (await call("GET", "/state")).json();
  fillEvents(state, `event:${name}`);
  status(`Saved the event ${name}`);
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch (_) {
    return text;
  }
}

async function invoke() {
  $("invoke").disabled = true;
  status("Invoking…");
  try {
    const result = await (await call("POST", "/invoke", $("event").value)).json();
    $("result").hidden = false;
    const outcome = $("outcome");
    outcome.textContent = result.failed ? "Failed" : "Succeeded";
    outcome.className = result.failed ? "bad" : "ok";
    $("duration").textContent = `${result.duration_ms.toFixed(2)} ms`;
    const used = result.max_memory_used_mb === null ? "?" : result.max_memory_used_mb;
    $("memory").textContent = `${used} MB of ${result.memory_size_mb} MB`;
    $("request-id").textContent = result.request_id;
    $("response").textContent = pretty(result.body);
    $("log").textContent = result.log;
    status("");
  } finally {
    $("invoke").disabled = false;
  }
}

// Errors of the actions above are shown, never left in the browser's console.
function action(fn) {
  return () => fn().catch((e) => status(e.message, true));
}

async function start() {
  const state = await (await call("GET", "/state")).json();
  $("handler").textContent = `${state.handler} in ${state.task_root}`;
  const list = $("files");
  for (const path of state.files) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = path;
    button.dataset.path = path;
    button.addEventListener("click", action(() => openFile(path)));
    item.append(button);
    list.append(item);
  }
  fillEvents(state);
  const source = $("source");
  source.addEventListener("input", render);
  source.addEventListener("scroll", () => {
    $("highlight").scrollLeft = source.scrollLeft;
  });
  source.addEventListener("keydown", (e) => {
    if (e.key === "Tab") {
      e.preventDefault();
      source.setRangeText("  ", source.selectionStart, source.selectionEnd, "end");
      render();
    } else if ((e.ctrlKey || e.metaKey) && e.key === "s") {
      e.preventDefault();
      if (!$("save").disabled) action(saveFile)();
    }
  });
  $("save").addEventListener("click", action(saveFile));
  $("event-pick").addEventListener("change", action(pickEvent));
  $("save-event").addEventListener("click", action(saveEvent));
  $("invoke").addEventListener("click", action(invoke));
  // The handler's own file first, when it is listed.
  const stem = state.handler.split(".").slice(0, -1).join(".") || state.handler;
  const first = state.files.find((f) => f === `${stem}.lua` || f === `${stem}.rhai`) || state.files[0];
  if (first !== undefined) await openFile(first);
  render();
}

document.addEventListener("DOMContentLoaded", action(start));
