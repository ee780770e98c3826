// A small web chat on @tern/sdk: log in as a user, a conversation list with unread counts,
// a conversation with history, typing and read receipts. Everything it shows comes from
// the SDK's events, which deliver each message once and in order, also after the browser
// was offline.

import { Client } from "/tern.min.js";

const $ = (id) => document.getElementById(id);
let client;
let me = "";
let open = "";
const convs = new Map(); // id -> { id, lastSeq, readSeq, unread, last }
const messages = new Map(); // conversation id -> Map(seq -> message)
const pending = new Map(); // client_msg_id -> { conv, text }
const peerRead = new Map(); // conversation id -> the peer's read seq
let typingTimer;
let lastTypingSent = 0;

const directId = (a, b) => `d:${[a, b].sort().join(":")}`;
function titleOf(id) {
  if (id.startsWith("d:")) return id.slice(2).split(":").find((u) => u !== me) ?? me;
  return id;
}
function conv(id) {
  if (!convs.has(id)) convs.set(id, { id, lastSeq: 0, readSeq: 0, unread: 0, last: "" });
  return convs.get(id);
}
function store(m) {
  if (!messages.has(m.conversationId)) messages.set(m.conversationId, new Map());
  messages.get(m.conversationId).set(m.seq, m);
  const c = conv(m.conversationId);
  if (m.seq >= c.lastSeq) {
    c.lastSeq = m.seq;
    c.last = m.content?.text ?? `[${m.type}]`;
  }
}

function renderConversations() {
  const ul = $("conversations");
  ul.replaceChildren(
    ...[...convs.values()]
      .sort((a, b) => b.lastSeq - a.lastSeq || a.id.localeCompare(b.id))
      .map((c) => {
        const li = document.createElement("li");
        li.className = "conv" + (c.id === open ? " open" : "");
        li.dataset.id = c.id;
        li.innerHTML = `<div><div class="name"></div><div class="last"></div></div><span class="unread"></span>`;
        li.querySelector(".name").textContent = titleOf(c.id);
        li.querySelector(".last").textContent = c.last;
        const badge = li.querySelector(".unread");
        badge.textContent = String(c.unread);
        badge.dataset.count = String(c.unread);
        li.onclick = () => openConversation(c.id);
        return li;
      }),
  );
}

function renderMessages() {
  const ol = $("messages");
  const list = [...(messages.get(open)?.values() ?? [])].sort((a, b) => a.seq - b.seq);
  const read = peerRead.get(open) ?? 0;
  const items = list.map((m) => {
    const li = document.createElement("li");
    const mine = m.sender === me;
    li.className = "msg" + (mine ? " mine" : "");
    li.dataset.seq = String(m.seq);
    li.innerHTML = `<div class="text"></div><div class="meta"></div>`;
    li.querySelector(".text").textContent = m.recalled ? "(recalled)" : (m.content?.text ?? `[${m.type}]`);
    const time = new Date(m.createdAt).toLocaleTimeString();
    li.querySelector(".meta").textContent = mine ? `${time} · ${m.seq <= read ? "read" : "sent"}` : `${m.sender} · ${time}`;
    if (mine) li.querySelector(".meta").classList.add("receipt", m.seq <= read ? "read" : "sent");
    return li;
  });
  for (const [id, p] of pending) {
    if (p.conv !== open) continue;
    const li = document.createElement("li");
    li.className = "msg mine pending";
    li.dataset.clientMsgId = id;
    li.innerHTML = `<div class="text"></div><div class="meta">sending…</div>`;
    li.querySelector(".text").textContent = p.text;
    items.push(li);
  }
  ol.replaceChildren(...items);
  ol.scrollTop = ol.scrollHeight;
}

async function markRead() {
  const c = convs.get(open);
  if (!c || c.lastSeq <= c.readSeq || client.state !== "connected") return;
  try {
    const entry = await client.read(open, c.lastSeq);
    c.unread = entry.unread;
    c.readSeq = Math.max(c.readSeq, entry.readSeq);
    renderConversations();
  } catch {
    // offline: read again when the next message or the reconnect comes
  }
}

async function openConversation(id) {
  open = id;
  conv(id);
  $("title").textContent = titleOf(id);
  $("text").disabled = false;
  $("send").disabled = false;
  $("typing").textContent = "";
  renderConversations();
  renderMessages();
  if (client.state === "connected" && (!messages.get(id) || messages.get(id).size < 50)) {
    try {
      const c = conv(id);
      const page = c.lastSeq > 0 ? await client.historyBefore(id, c.lastSeq + 1, 50) : await client.history(id, 0, 50);
      for (const m of page) store(m);
    } catch (e) {
      if (e.code !== "not_found") console.warn("history", e);
    }
  }
  renderMessages();
  await markRead();
}

async function login(user) {
  me = user;
  const tokenProvider = async () => {
    const res = await fetch("/api/token", { method: "POST", body: JSON.stringify({ user }) });
    if (!res.ok) throw new Error(`token: ${res.status}`);
    const { token, url } = await res.json();
    sessionStorage.setItem("tern-url", url);
    return token;
  };
  const first = await tokenProvider();
  let deviceId = sessionStorage.getItem(`tern-device-${user}`);
  if (!deviceId) {
    deviceId = `web-${crypto.randomUUID()}`;
    sessionStorage.setItem(`tern-device-${user}`, deviceId);
  }
  client = new Client({ url: sessionStorage.getItem("tern-url"), token: first, tokenProvider, deviceId, platform: "web", maxBackoffMs: 5000 });
  window.chat = { client };

  client.on("state", (e) => {
    $("status").textContent = e.state;
    $("status").dataset.state = e.state;
    if (e.state === "connected") markRead();
  });
  client.on("conversation", ({ conversation: c }) => {
    if (c.conversationId.startsWith("s:")) return;
    const local = conv(c.conversationId);
    local.lastSeq = Math.max(local.lastSeq, c.lastSeq);
    local.readSeq = Math.max(local.readSeq, c.readSeq);
    local.unread = c.conversationId === open ? local.unread : c.unread;
    if (c.lastMessage && c.lastMessage.seq >= local.lastSeq) local.last = c.lastMessage.content?.text ?? "";
    renderConversations();
  });
  client.on("message", ({ message: m }) => {
    // Unread counts come from the server's list; a message beyond what the list knew adds one.
    const isNew = m.seq > conv(m.conversationId).lastSeq;
    store(m);
    pending.delete(m.clientMsgId);
    if (m.sender !== me && isNew) conv(m.conversationId).unread++;
    if (m.conversationId === open) {
      $("typing").textContent = "";
      renderMessages();
      if (m.sender !== me) markRead();
    }
    renderConversations();
  });
  client.on("changed", ({ change: c }) => {
    // Edits, recalls and deletes for this user, each once, after the message they change.
    const m = messages.get(c.conversationId)?.get(c.seq);
    if (!m) return;
    if (c.change.case === "edit") m.content = c.change.value.content;
    else if (c.change.case === "recall") {
      m.recalled = true;
      m.content = undefined;
    } else if (c.change.case === "deleted") messages.get(c.conversationId).delete(c.seq);
    if (c.conversationId === open) renderMessages();
  });
  client.on("receipt", (e) => {
    if (e.userId === me) {
      // Read on another device of this user.
      const c = conv(e.conversationId);
      c.readSeq = Math.max(c.readSeq, e.readSeq);
      c.unread = Math.max(0, c.lastSeq - c.readSeq);
      renderConversations();
      return;
    }
    peerRead.set(e.conversationId, Math.max(peerRead.get(e.conversationId) ?? 0, e.readSeq));
    if (e.conversationId === open) renderMessages();
  });
  client.on("typing", (e) => {
    if (e.conversationId !== open || e.userId === me) return;
    $("typing").textContent = `${e.userId} is typing…`;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => ($("typing").textContent = ""), 3000);
  });
  client.on("sendFailed", (e) => {
    pending.delete(e.clientMsgId);
    renderMessages();
    $("typing").textContent = `not sent: ${e.code}`;
  });

  $("login").hidden = true;
  $("chat").hidden = false;
  $("me").textContent = user;
  await client.connect();
}

$("login").onsubmit = async (ev) => {
  ev.preventDefault();
  try {
    await login($("user").value.trim());
  } catch (e) {
    $("login-error").textContent = `${e.code ?? "error"}: ${e.message}`;
    $("login").hidden = false;
    $("chat").hidden = true;
  }
};

$("new-chat").onsubmit = (ev) => {
  ev.preventDefault();
  const peer = $("peer").value.trim();
  if (!peer) return;
  $("peer").value = "";
  openConversation(directId(me, peer));
};

$("composer").onsubmit = (ev) => {
  ev.preventDefault();
  const text = $("text").value;
  if (!text || !open) return;
  $("text").value = "";
  const to = open.startsWith("d:") ? { user: titleOf(open) } : open.startsWith("g:") ? { group: open.slice(2) } : { room: open.slice(2) };
  const clientMsgId = `c-${crypto.randomUUID()}`;
  pending.set(clientMsgId, { conv: open, text });
  renderMessages();
  // Queued while offline (kept in IndexedDB) and sent, once, when the connection is back.
  client.send(to, "text", { text }, { clientMsgId }).catch(() => undefined);
};

$("text").oninput = () => {
  if (!open || client.state !== "connected" || Date.now() - lastTypingSent < 2000) return;
  lastTypingSent = Date.now();
  client.typing(open).catch(() => undefined);
};
