// The demo page: plays Telegram for the demo shopper and the demo admin. The chats come from
// the server as JSON (server-sent events); formatting arrives as a tree of known nodes and is
// built with createElement/textContent only, so nothing the bot sends can run here.

const $ = (id) => document.getElementById(id);
const TAGS = { b: "b", i: "i", u: "u", s: "s", code: "code", pre: "pre", a: "a", blockquote: "blockquote", spoiler: "span", span: "span" };

const state = { config: null, chats: {}, who: "shopper", seen: {}, rendered: null, elements: {} };
// Whether the chat follows its newest message: true until the user scrolls up to read, true
// again once they scroll back down (as Telegram does).
const NEAR_BOTTOM_PX = 80;
let followBottom = true;

async function api(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Demo-Page": "1" },
    body: JSON.stringify({ who: state.who, ...body }),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) { throw new Error(data.error || `HTTP ${response.status}`); }
  return data;
}

// --- rendering ------------------------------------------------------------------------------

function richText(nodes, parent) {
  for (const node of nodes) {
    if (typeof node === "string") { parent.append(document.createTextNode(node)); continue; }
    const element = document.createElement(TAGS[node.t] || "span");
    if (node.t === "spoiler") {
      element.className = "spoiler";
      element.addEventListener("click", () => element.classList.add("shown"));
    }
    if (node.t === "a" && node.href) {
      element.href = node.href;
      element.rel = "noopener noreferrer";
      element.addEventListener("click", (event) => { event.preventDefault(); openLink(node.href); });
    }
    richText(node.c || [], element);
    parent.append(element);
  }
}

function clock(seconds) {
  if (!seconds) { return ""; }
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function sizeText(bytes) {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KB`;
}

function renderMessage(message) {
  const box = document.createElement("div");
  box.className = `msg ${message.from}`;
  box.dataset.id = message.id;
  box.dataset.testid = message.from === "bot" ? "bot-message" : "user-message";
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  if (message.photo) {
    if (message.photo.href) {
      const img = document.createElement("img");
      img.className = "photo";
      img.alt = "photo";
      img.src = message.photo.href;
      bubble.append(img);
    } else {
      const missing = document.createElement("span");
      missing.className = "photo-missing";
      missing.textContent = "📷 photo (sent by URL; not fetched in the demo)";
      bubble.append(missing);
    }
  }
  if (message.document) {
    const link = document.createElement("a");
    link.className = "document";
    link.href = message.document.href;
    link.download = message.document.name;
    link.dataset.testid = "document";
    const icon = document.createElement("span");
    icon.className = "icon-doc";
    icon.textContent = "⬇";
    const label = document.createElement("span");
    const name = document.createElement("b");
    name.textContent = message.document.name;
    const size = document.createElement("small");
    size.textContent = sizeText(message.document.size);
    label.append(name, size);
    link.append(icon, label);
    bubble.append(link);
  }
  const text = document.createElement("div");
  text.className = "text";
  richText(message.text, text);
  bubble.append(text);
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = `${message.edited ? "edited " : ""}${clock(message.date)}`;
  bubble.append(meta);
  box.append(bubble);
  if (message.buttons.length) {
    const keyboard = document.createElement("div");
    keyboard.className = "keyboard";
    message.buttons.forEach((row, r) => {
      const line = document.createElement("div");
      line.className = "row";
      row.forEach((button, c) => {
        const element = document.createElement("button");
        element.type = "button";
        element.className = "kb";
        element.dataset.kind = button.kind;
        element.textContent = button.text;
        if (button.kind === "url" || button.kind === "web_app") {
          const arrow = document.createElement("span");
          arrow.className = "arrow";
          arrow.setAttribute("aria-hidden", "true");
          arrow.textContent = "↗";
          element.append(arrow);
        }
        element.title = button.url || button.text;
        element.addEventListener("click", () => press(message, r, c, button, element));
        line.append(element);
      });
      keyboard.append(line);
    });
    box.append(keyboard);
  }
  return box;
}

function render() {
  const chat = state.chats[state.who];
  const list = $("messages");
  if (!chat) { return; }
  renderCommands();
  renderMenuButton();
  const key = `${state.who}:${chat.version}`;
  if (state.rendered === key) { return; }
  if (state.rendered?.split(":")[0] !== state.who) { followBottom = true; }
  state.rendered = key;
  // A message that has not changed keeps its element (a spoiler stays open, a photo loaded).
  const cache = state.elements[state.who] || new Map();
  const next = new Map();
  const elements = chat.messages.map((message) => {
    const json = JSON.stringify(message);
    const known = cache.get(message.id);
    const element = known && known.json === json ? known.element : renderMessage(message);
    next.set(message.id, { json, element });
    return element;
  });
  state.elements[state.who] = next;
  list.replaceChildren(...elements);
  if (!chat.messages.length) {
    const empty = document.createElement("p");
    empty.className = "empty";
    empty.textContent = "No messages yet. Send /start to begin.";
    list.append(empty);
  }
  keepAtBottom();
  state.seen[state.who] = botCount(state.who);
  renderPersonas();
}

// The chat stays at its newest message while it follows it, also when the page's layout
// changes under it: a photo loads after the message was drawn, the window or the Mini App
// panel changes the chat's size. (Measured at the next change instead, the grown photo would
// count as scrolled up and the next message would land out of sight.)
let ownScrollTop = null;  // where keepAtBottom left it: a scroll event there is not the user's

function keepAtBottom() {
  const list = $("messages");
  if (!followBottom) { return; }
  list.scrollTop = list.scrollHeight;
  ownScrollTop = list.scrollTop;
}

function watchScrolling() {
  const list = $("messages");
  list.addEventListener("scroll", () => {
    if (list.scrollTop === ownScrollTop) { return; }
    followBottom = list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM_PX;
  });
  list.addEventListener("load", keepAtBottom, true);  // a photo (load does not bubble)
  new ResizeObserver(keepAtBottom).observe(list);
}

function botCount(who) {
  return (state.chats[who]?.messages || []).filter((m) => m.from === "bot").length;
}

function renderPersonas() {
  const box = $("personas");
  box.replaceChildren(...state.config.personas.map((persona) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "persona";
    button.setAttribute("role", "tab");
    button.setAttribute("aria-selected", String(persona.key === state.who));
    button.dataset.testid = `persona-${persona.key}`;
    const avatar = document.createElement("span");
    avatar.className = `avatar ${persona.key}`;
    avatar.textContent = persona.name.slice(0, 1);
    const names = document.createElement("span");
    names.className = "names";
    const name = document.createElement("b");
    name.textContent = persona.name;
    const role = document.createElement("small");
    role.textContent = persona.key === "admin" ? `${persona.label} · in ADMIN_IDS` : persona.label;
    names.append(name, role);
    button.append(avatar, names);
    const unread = botCount(persona.key) - (state.seen[persona.key] ?? botCount(persona.key));
    if (persona.key !== state.who && unread > 0) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.dataset.testid = `unread-${persona.key}`;
      badge.textContent = String(unread);
      button.append(badge);
    }
    button.addEventListener("click", () => switchTo(persona.key));
    return button;
  }));
}

function renderCommands() {
  const commands = state.chats[state.who]?.commands || [];
  const box = $("commands");
  box.replaceChildren(...commands.map((item) => {
    const button = document.createElement("button");
    button.type = "button";
    const name = document.createElement("b");
    name.textContent = `/${item.command}`;
    const description = document.createElement("span");
    description.textContent = item.description;
    button.append(name, description);
    button.addEventListener("click", () => { box.hidden = true; send(`/${item.command}`); });
    return button;
  }));
}

// The bot's menu button (setChatMenuButton): a web_app one opens the Mini App, as in Telegram.
function renderMenuButton() {
  const menu = state.chats[state.who]?.menu_button || { type: "commands" };
  const button = $("webapp-menu");
  button.hidden = menu.type !== "web_app";
  button.textContent = menu.text || "";
  button.dataset.url = menu.url || "";
}

function switchTo(who) {
  // The open Mini App belongs to the other user's Telegram: it closes, as theirs would.
  if (who !== state.who) { closeWebApp(); }
  state.who = who;
  state.rendered = null;
  $("commands").hidden = true;
  render();
  $("text").focus();
}

// --- actions --------------------------------------------------------------------------------

function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 3500);
}

function alertBox(text) {
  $("alert-text").textContent = text;
  $("alert").hidden = false;
  $("alert-ok").focus();
}

async function send(text) {
  try { await api("/api/send", { text }); } catch (error) { toast(error.message); }
}

async function press(message, row, col, button, element) {
  if (button.kind === "url") { return openLink(button.url); }
  if (button.kind === "web_app") { return openWebApp(button.url); }
  if (button.kind !== "callback") { return toast("This kind of button is not part of the demo."); }
  element.classList.add("busy");
  try {
    const result = await api("/api/tap", { message_id: message.id, row, col, text: button.text });
    const answer = result.answer || {};
    if (answer.text) { answer.show_alert ? alertBox(answer.text) : toast(answer.text); }
  } catch (error) {
    toast(error.message);
  } finally {
    element.classList.remove("busy");
  }
}

async function openLink(url) {
  try {
    const result = await api("/api/link", { url });
    if (result.kind === "pay") { openPay(result.url); }
    else if (result.kind === "external") { window.open(result.url, "_blank", "noopener"); }
    else if (result.kind === "unsupported") { toast("This kind of link is not opened in the demo."); }
  } catch (error) {
    toast(error.message);
  }
}

function openPay(url) {
  $("pay-frame").src = url;
  $("pay").hidden = false;
}

function closePay() {
  $("pay").hidden = true;
  $("pay-frame").src = "about:blank";
}

async function openWebApp(url) {
  try {
    const result = await api("/api/webapp", url ? { url } : {});
    $("panel-frame").src = result.url;
    $("panel").hidden = false;
    $("panel-main").hidden = true;
    $("panel-back").hidden = true;
  } catch (error) {
    toast(error.message);
  }
}

function closeWebApp() {
  $("panel").hidden = true;
  $("panel-frame").src = "about:blank";
}

// The Mini App's calls to Telegram.WebApp arrive here (bot/sandbox/telegram_web_app.js).
function onWebAppCall(event) {
  const data = event.data || {};
  const frame = $("panel-frame");
  // Only the Mini App itself: the frame's window, still on the shop's origin (a page it
  // navigated to elsewhere is not the Mini App and may not act for it).
  if (data.source !== "telegram-web-app-stub" || event.source !== frame.contentWindow) { return; }
  if (!frame.src.startsWith("http") || event.origin !== new URL(frame.src).origin) { return; }
  const args = data.args || [];
  const main = $("panel-main");
  switch (data.method) {
    case "openTelegramLink":
    case "openLink":
    case "openInvoice":
      openLink(String(args[0] || ""));
      break;
    case "close": closeWebApp(); break;
    case "showAlert": alertBox(String(args[0] || "")); break;
    case "MainButton.setText": main.textContent = String(args[0] || ""); break;
    case "MainButton.setParams": if (args[0]?.text) { main.textContent = args[0].text; } break;
    case "MainButton.show": main.hidden = false; break;
    case "MainButton.hide": main.hidden = true; break;
    case "BackButton.show": $("panel-back").hidden = false; break;
    case "BackButton.hide": $("panel-back").hidden = true; break;
    default: break;
  }
}

function tellWebApp(button) {
  $("panel-frame").contentWindow?.postMessage({ source: "telegram-web-app-host", button, event: "click" }, "*");
}

// --- start ----------------------------------------------------------------------------------

function connect() {
  const events = new EventSource("/api/events");
  events.onopen = () => { $("status").textContent = "Connected to the local shop."; $("status").classList.remove("down"); };
  events.onmessage = (event) => {
    state.chats = JSON.parse(event.data).chats;
    for (const key of Object.keys(state.chats)) { state.seen[key] ??= botCount(key); }
    render();
    renderPersonas();
  };
  events.onerror = () => {
    $("status").textContent = "The demo is not answering (stopped?). Retrying…";
    $("status").classList.add("down");
  };
}

async function start() {
  state.config = await (await fetch("/api/config")).json();
  const bot = state.config.bot;
  $("bot-name").textContent = bot.name;
  $("bot-username").textContent = `@${bot.username} · bot`;
  $("bot-avatar").textContent = bot.name.slice(0, 1);
  $("panel-title").textContent = bot.name;
  renderPersonas();
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text").value.trim();
    if (!text) { return; }
    $("text").value = "";
    $("commands").hidden = true;
    send(text);
  });
  $("text").addEventListener("input", () => {
    $("commands").hidden = $("text").value !== "/";
  });
  $("menu-button").addEventListener("click", () => { $("commands").hidden = !$("commands").hidden; });
  $("file").addEventListener("change", async () => {
    const file = $("file").files[0];
    if (!file) { return; }
    const form = new FormData();
    form.append("who", state.who);
    form.append("file", file);
    form.append("caption", $("text").value.trim());
    $("text").value = "";
    $("file").value = "";
    const response = await fetch("/api/upload", { method: "POST", body: form, headers: { "X-Demo-Page": "1" } });
    if (!response.ok) { toast("The file was not sent."); }
  });
  $("webapp-menu").addEventListener("click", () => openWebApp($("webapp-menu").dataset.url));
  $("panel-close").addEventListener("click", closeWebApp);
  $("panel-main").addEventListener("click", () => tellWebApp("MainButton"));
  $("panel-back").addEventListener("click", () => tellWebApp("BackButton"));
  $("pay-close").addEventListener("click", closePay);
  $("alert-ok").addEventListener("click", () => { $("alert").hidden = true; });
  window.addEventListener("message", onWebAppCall);
  watchScrolling();
  connect();
  $("text").focus();
}

start();
