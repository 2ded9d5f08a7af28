// The local demo page (devkit/demo). Plain JavaScript, no libraries, no build step.
// It plays the people only: the nurse through the bot's /api/v1, the caller and the leader
// through the local Bot API's user side (forwarded under demo/user/), the admin through
// demo/api/content. Every URL here is relative: nothing leaves this machine.
"use strict";

const $ = (id) => document.getElementById(id);
const demo = { key: null, bot: "", topics: new Map(), pending: null, contentLoaded: false };
const NAMES = { nb: "Bokmål", nn: "Nynorsk" };
// The API's field names as the form calls them.
const FIELD_NAMES = {
  topic: "Kontaktårsak", locale: "Språk", note: "Notat", risk_groups: "Risikogrupper",
  checkin_hours: "Oppfølging", phone: "Telefonnummer", send_sms: "SMS", body: "Skjemaet",
};

// --- talking to the bot's server ---------------------------------------------------------

async function request(path, { method = "GET", body, auth = false } = {}) {
  // The page is in Bokmål: the API's messages come in Bokmål too (its error codes stay English).
  const headers = { "Accept-Language": "nb" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) headers.Authorization = `Bearer ${demo.key}`;
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch (_error) { data = {}; }
  return { ok: response.ok, status: response.status, data };
}

function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.classList.add("shown");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("shown"), 3500);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
  }
  return node;
}

// --- Telegram HTML, as Telegram shows it ---------------------------------------------------

const TAGS = {
  B: "strong", STRONG: "strong", I: "em", EM: "em", U: "u", INS: "u", S: "s", STRIKE: "s",
  DEL: "s", CODE: "code", PRE: "pre", BLOCKQUOTE: "blockquote",
};

/** The start payload of a link to this bot (t.me/<bot>?start=…), or null. */
function startPayload(href) {
  const match = /^https?:\/\/t\.me\/([A-Za-z0-9_]+)\?start=([A-Za-z0-9_-]{1,64})$/.exec(href.trim());
  if (!match) return null;
  if (demo.bot && match[1].toLowerCase() !== demo.bot.toLowerCase()) return null;
  return match[2];
}

/** DOM for the bot's Telegram HTML: only Telegram's tags; links stay on this page. */
function renderHtml(html, chat) {
  const doc = new DOMParser().parseFromString(`<div>${html}</div>`, "text/html");
  const copy = (node) => {
    if (node.nodeType === Node.TEXT_NODE) return document.createTextNode(node.textContent);
    if (node.nodeType !== Node.ELEMENT_NODE) return document.createTextNode("");
    let out;
    if (node.tagName === "A") {
      const href = node.getAttribute("href") || "";
      const payload = startPayload(href);
      if (payload && chat) {
        out = el("a", { href: "#", title: "Åpnes i denne chatten" });
        out.addEventListener("click", (event) => { event.preventDefault(); chat.send(`/start ${payload}`); });
      } else {
        out = el("span", { class: "link", title: href });
      }
    } else if (node.tagName === "TG-SPOILER" || (node.tagName === "SPAN" && node.className === "tg-spoiler")) {
      out = el("span", { class: "spoiler", tabindex: "0" });
    } else {
      out = document.createElement(TAGS[node.tagName] || "span");
    }
    node.childNodes.forEach((child) => out.appendChild(copy(child)));
    return out;
  };
  const body = el("div", { class: "body" });
  doc.body.firstChild.childNodes.forEach((child) => body.appendChild(copy(child)));
  return body;
}

// --- a phone-sized chat with the bot, as one person ----------------------------------------

class Chat {
  constructor(root, { key, firstName, language = "nb", label }) {
    this.root = root;
    this.key = key;
    this.firstName = firstName;
    this.language = language;
    this.label = label;
    this.userId = Number(sessionStorage.getItem(`demo-user-${key}`)) || this.constructor.newId();
    sessionStorage.setItem(`demo-user-${key}`, String(this.userId));
    this.seq = 0;
    this.items = new Map();
    this.generation = 0;
    this.listeners = [];
    this.build();
    this.start();
  }

  static newId() {
    return 7000000 + Math.floor(Math.random() * 2000000);
  }

  get base() { return `demo/user/${this.userId}`; }

  build() {
    const inputId = `${this.key}-input`;
    this.who = el("small", {});
    this.log = el("ol", { class: "messages", role: "log", "aria-live": "polite",
      "aria-label": `Chat: ${this.label} og boten`, tabindex: "0" });
    this.keyboard = el("div", { class: "keyboard", "aria-label": "Svaralternativer" });
    this.input = el("input", { id: inputId, type: "text", autocomplete: "off",
      placeholder: "Skriv en melding …" });
    const form = el("form", { class: "compose" },
      el("label", { for: inputId, class: "sr-only", text: `Melding fra ${this.label}` }),
      this.input,
      el("button", { type: "submit", class: "primary", text: "Send" }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = this.input.value.trim();
      if (!text) return;
      this.input.value = "";
      this.send(text);
    });
    const reset = el("button", { type: "button", text: "Ny person",
      title: "Start på nytt som en ny person (ny chat)" });
    reset.addEventListener("click", () => this.reset());
    this.root.replaceChildren(
      el("div", { class: "phone-top" },
        el("span", { class: "avatar", "aria-hidden": "true", text: "S" }),
        el("div", { class: "who" }, el("strong", { text: "Sikkerhetsnett" }), this.who),
        reset),
      this.log, this.keyboard, form);
    this.updateWho();
  }

  updateWho() {
    this.who.textContent = `lokal demo · du er ${this.label} (${this.userId})`;
  }

  reset() {
    this.userId = Chat.newId();
    sessionStorage.setItem(`demo-user-${this.key}`, String(this.userId));
    this.items.clear();
    this.log.replaceChildren();
    this.keyboard.replaceChildren();
    this.updateWho();
    this.start();
    this.note("Ny person: en tom chat med boten.");
  }

  onMessages(listener) { this.listeners.push(listener); }

  async start() {
    const generation = ++this.generation;
    this.seq = 0;
    const { ok, data } = await request(`${this.base}/messages?after_seq=0`);
    if (ok && generation === this.generation) this.receive(data);
    this.poll(generation);
  }

  async poll(generation) {
    while (generation === this.generation) {
      try {
        const { ok, data } = await request(`${this.base}/wait?after_seq=${this.seq}&timeout=25`);
        if (generation !== this.generation) return;
        if (ok) this.receive(data);
        else await new Promise((resolve) => setTimeout(resolve, 1000));
      } catch (_error) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  receive(data) {
    const fresh = [];
    for (const message of data.messages || []) {
      if (message.seq > this.seq) fresh.push(message);
      this.show(message);
    }
    this.seq = Math.max(this.seq, Number(data.last_seq) || 0);
    if (fresh.length) this.listeners.forEach((listener) => listener(fresh));
  }

  scroll() { this.log.scrollTop = this.log.scrollHeight; }

  note(text) {
    this.log.append(el("li", { class: "msg system", text }));
    this.scroll();
  }

  async send(text) {
    this.log.append(el("li", { class: "msg me", text }));
    this.scroll();
    const { ok, data } = await request(`${this.base}/messages`, {
      method: "POST",
      body: { text, first_name: this.firstName, language_code: this.language },
    });
    if (!ok) this.note(`Ikke sendt: ${data.error || "ukjent feil"}`);
  }

  async press(messageId, data, button) {
    button.disabled = true;
    setTimeout(() => { button.disabled = false; }, 800);
    const sent = await request(`${this.base}/callbacks`, {
      method: "POST", body: { message_id: messageId, data },
    });
    if (!sent.ok) { this.note(`Knappen virket ikke: ${sent.data.error || "ukjent feil"}`); return; }
    const query = encodeURIComponent(sent.data.callback_query_id);
    const answer = await request(
      `${this.base}/wait?after_seq=9007199254740991&timeout=5&callback_query_id=${query}`);
    const text = answer.ok && answer.data.callback_answer && answer.data.callback_answer.text;
    if (text) toast(text);
  }

  show(message) {
    const item = this.items.get(message.message_id);
    const node = el("li", { class: "msg bot", "data-message-id": String(message.message_id) });
    if (message.deleted) node.classList.add("deleted");
    if (message.photo) {
      node.append(el("img", { src: `${this.base}/files/${message.message_id}`, alt: "Bilde fra boten" }));
    }
    if (message.document) {
      const name = message.document.file_name || "fil";
      node.append(el("a", { href: `${this.base}/files/${message.message_id}`, download: name },
        `📎 ${name} (${message.document.file_size} byte)`));
    }
    if (message.html) node.append(renderHtml(message.html, this));
    else if (message.text) node.append(el("div", { class: "body", text: message.text }));
    if (message.caption_html || message.caption) {
      node.append(message.caption_html ? renderHtml(message.caption_html, this)
        : el("div", { class: "body", text: message.caption }));
    }
    if (!message.deleted && message.buttons && message.buttons.length) {
      const rows = el("div", { class: "rows" });
      for (const row of message.buttons) {
        const line = el("div", { class: "row" });
        for (const button of row) {
          if (button.callback_data !== undefined) {
            const b = el("button", { type: "button", text: button.text });
            b.addEventListener("click", () => this.press(message.message_id, button.callback_data, b));
            line.append(b);
          } else {
            const payload = button.url ? startPayload(button.url) : null;
            if (payload) {
              const b = el("button", { type: "button", text: button.text });
              b.addEventListener("click", () => this.send(`/start ${payload}`));
              line.append(b);
            } else {
              line.append(el("span", { class: "link-button", title: button.url || "",
                text: `${button.text} (lenke)` }));
            }
          }
        }
        rows.append(line);
      }
      node.append(rows);
    }
    if (message.edited || message.deleted) {
      node.append(el("div", { class: "meta", text: message.deleted ? "slettet" : "redigert" }));
    }
    if (message.keyboard) this.showKeyboard(message.keyboard);
    if (item) item.replaceWith(node);
    else this.log.append(node);
    this.items.set(message.message_id, node);
    this.scroll();
  }

  showKeyboard(rows) {
    this.keyboard.replaceChildren();
    for (const row of rows) {
      for (const text of row) {
        const b = el("button", { type: "button", text });
        b.addEventListener("click", () => this.send(text));
        this.keyboard.append(b);
      }
    }
  }
}

/** The leader's "Ledergruppe": a Telegram group with the bot in it. What the group reads comes
 * from the group's chat; what Lise writes there goes in as a member of the group. */
class GroupChat extends Chat {
  constructor(root, member) {
    super(root, { key: "group", firstName: member.firstName, label: "Ledergruppe" });
    this.member = member;
  }

  static newId() {
    return -(4000000000 + Math.floor(Math.random() * 900000000));
  }

  build() {
    super.build();
    this.root.querySelector(".avatar").textContent = "L";
    this.root.querySelector(".who strong").textContent = "Ledergruppe";
    const reset = this.root.querySelector(".phone-top button");
    reset.textContent = "Ny gruppe";
    reset.title = "Start på nytt med en ny gruppe uten boten";
  }

  reset() {
    this.userId = GroupChat.newId();
    sessionStorage.setItem(`demo-user-${this.key}`, String(this.userId));
    this.items.clear();
    this.log.replaceChildren();
    this.keyboard.replaceChildren();
    this.updateWho();
    this.start();
    this.note("Ny gruppe: boten er ikke med.");
  }

  updateWho() {
    this.who.textContent = `gruppe i lokal demo · du skriver som ${this.firstName}`;
  }

  async addBot(payload) {
    const { ok, data } = await request(`demo/user/${this.member.userId}/groups`, {
      method: "POST",
      body: { chat_id: this.userId, title: "Ledergruppe", start: payload, first_name: this.member.firstName },
    });
    if (!ok) this.note(`Boten ble ikke lagt til: ${data.error || "ukjent feil"}`);
    return ok;
  }

  async send(text) {
    this.log.append(el("li", { class: "msg me", text: `${this.member.firstName}: ${text}` }));
    this.scroll();
    const { ok, data } = await request(`demo/user/${this.member.userId}/groups/${this.userId}/messages`, {
      method: "POST", body: { text, first_name: this.member.firstName },
    });
    if (!ok) this.note(`Ikke sendt: ${data.error || "ukjent feil"}`);
    else if (data.update_id === null) this.note("Boten får ikke denne meldingen (personvernmodus i grupper).");
  }
}

// --- personas -----------------------------------------------------------------------------

const PERSONAS = ["nurse", "caller", "leader", "admin"];

function show(persona, { focus = true } = {}) {
  if (!PERSONAS.includes(persona)) persona = "nurse";
  for (const button of document.querySelectorAll("[data-persona]")) {
    const on = button.dataset.persona === persona;
    if (on) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
    $(button.dataset.persona).hidden = !on;
  }
  if (location.hash !== `#${persona}`) history.replaceState(null, "", `#${persona}`);
  if (persona === "admin") loadContent();
  if (focus) $(`${persona}-title`).focus();
}

// --- the nurse ----------------------------------------------------------------------------

async function loadTopics() {
  const { ok, data } = await request("api/v1/topics", { auth: true });
  const select = $("topic");
  if (!ok) {
    select.replaceChildren(el("option", { value: "", text: "Kunne ikke hente temaene" }));
    return;
  }
  select.replaceChildren(el("option", { value: "", text: "Velg kontaktårsak …" }));
  for (const topic of data.topics) {
    demo.topics.set(topic.id, topic);
    const mark = topic.status === "approved" ? "" : " (utkast)";
    select.append(el("option", { value: topic.id, text: `${topic.title}${mark}` }));
  }
  const first = data.topics.find((t) => t.id === "fever-child") || data.topics[0];
  if (first) select.value = first.id;
  topicChosen();
}

function topicChosen() {
  const topic = demo.topics.get($("topic").value);
  const risks = $("risks");
  risks.replaceChildren();
  $("topic-hint").textContent = "";
  if (!topic) {
    risks.append(el("p", { class: "hint", text: "Velg en kontaktårsak først." }));
    return;
  }
  const notes = [];
  if (topic.example) notes.push("Eksempeltekst, ikke godkjent av lege ennå.");
  if (topic.checkin_hours.length) {
    notes.push(`Oppfølging tilbys etter ${topic.checkin_hours.join(", ")} timer.`);
  } else notes.push("Dette temaet har ikke oppfølgingsspørsmål.");
  $("topic-hint").textContent = notes.join(" ");
  $("note").disabled = !topic.note;
  $("checkin").disabled = !topic.checkin_hours.length;
  if (!topic.risk_groups.length) {
    risks.append(el("p", { class: "hint", text: "Dette temaet har ingen risikogrupper." }));
  }
  for (const group of topic.risk_groups) {
    risks.append(el("label", { class: "choice" },
      el("input", { type: "checkbox", name: "risk", value: group.id }), ` ${group.label}`));
  }
}

function clearErrors() {
  for (const node of document.querySelectorAll("#dispatch-form .error")) node.textContent = "";
}

async function createDispatch(event) {
  event.preventDefault();
  clearErrors();
  const topic = demo.topics.get($("topic").value);
  if (!topic) { $("topic-error").textContent = "Velg en kontaktårsak."; $("topic").focus(); return; }
  const body = {
    topic: topic.id,
    locale: document.querySelector("input[name=locale]:checked").value,
    risk_groups: [...document.querySelectorAll("input[name=risk]:checked")].map((b) => b.value),
  };
  const note = $("note").value.trim();
  if (note && topic.note) body.note = note;
  const minutes = $("checkin").disabled ? "" : $("checkin").value;
  if (minutes !== "") body.checkin_hours = topic.checkin_hours[0];
  $("create").disabled = true;
  try {
    const { ok, status, data } = await request("api/v1/dispatches", { method: "POST", body, auth: true });
    if (!ok) {
      const fields = data.fields || {};
      for (const [name, message] of Object.entries(fields)) {
        const target = $(`${name}-error`);
        if (target) target.textContent = message.charAt(0).toUpperCase() + message.slice(1);
      }
      $("form-error").textContent = `Ikke laget (${status}): ${data.message || "ukjent feil"}`
        + (Object.keys(fields).length
          ? ` – ${Object.entries(fields).map(([k, v]) => `${FIELD_NAMES[k] || k}: ${v}`).join("; ")}` : "");
      return;
    }
    demo.pending = {
      id: data.id, link: data.deep_link,
      minutes: minutes === "" ? null : Number(minutes), hours: data.checkin_hours,
    };
    remember(data);
    $("deep-link").textContent = data.deep_link;
    $("advice-url").textContent = data.advice_url;
    $("advice-url").href = data.advice_url;
    $("sms-text").textContent = data.sms_text;
    const parts = data.sms_text.length <= 160 ? "én SMS" : "to SMS-deler (sendes som én SMS)";
    $("sms-size").textContent = `${data.sms_text.length} tegn – ${parts}. Siden er åpen i ${linkHours(data)} timer.`;
    $("dispatch-result").hidden = false;
    $("caller-link").value = data.advice_url;
    $("result-title").focus();
  } finally {
    $("create").disabled = false;
  }
}

function linkHours(data) {
  const hours = (Date.parse(data.expires_at) - Date.now()) / 3600000;
  return Math.max(1, Math.round(hours));
}

// --- the nurse's live view: the clinic's events feed --------------------------------------

// Dispatches made on this page (id → {title, at}), and every event seen since the page loaded,
// by dispatch (an event can arrive before the POST that made its dispatch has answered).
const live = { mine: new Map(), events: new Map(), after: null, started: false };
const VIA = { telegram: "i Telegram", web: "på nettsiden" };
const ANSWERS = { better: "Bedre", same: "Som før", worse: "Verre" };

function clock(iso) {
  return new Date(iso).toLocaleTimeString("nb-NO", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function remember(dispatch) {
  live.mine.set(dispatch.id, { title: demo.topics.get(dispatch.topic)?.title || dispatch.topic });
  renderLive();
}

async function pollEvents() {
  // First, walk to the end of what was told before this page loaded; then only what is new.
  for (;;) {
    const query = `api/v1/events?limit=500${live.after ? `&after=${encodeURIComponent(live.after)}` : ""}`;
    const { ok, status, data } = await request(query, { auth: true });
    if (!ok) {
      if (status === 404) live.after = null; // the cursor's event is past retention: start over
      break;
    }
    const fresh = [];
    for (const event of data.data) {
      live.after = event.id;
      if (!live.started) continue;
      if (!live.events.has(event.dispatch_id)) live.events.set(event.dispatch_id, []);
      live.events.get(event.dispatch_id).push(event);
      fresh.push(event);
    }
    announce(fresh);
    if (!data.has_more) break;
  }
  live.started = true;
  renderLive();
}

function announce(fresh) {
  const worse = fresh.filter((e) => live.mine.has(e.dispatch_id)
    && (e.type === "dispatch.worse" || (e.type === "checkin.answered" && e.data.answer === "worse")));
  if (worse.length) $("live-news").textContent = `Innringeren blir verre (kl. ${clock(worse.at(-1).created_at)}).`;
}

function lines(events) {
  const out = [];
  let worse = false;
  for (const e of events) {
    const at = clock(e.created_at);
    const d = e.data;
    if (e.type === "dispatch.created") out.push(`Laget kl. ${at}${d.sms ? ", SMS i kø" : ""}.`);
    else if (e.type === "sms.sent") out.push(d.delivered ? `SMS sendt kl. ${at}.` : `SMS «sendt» kl. ${at} (demo: ikke sendt ut).`);
    else if (e.type === "sms.failed") out.push(`SMS ikke sendt (${d.reason || "ukjent grunn"}).`);
    else if (e.type === "dispatch.opened") out.push(`Åpnet ${VIA[d.via] || d.via} kl. ${at}.`);
    else if (e.type === "dispatch.worse") {
      worse = true;
      out.push({ worse: `Blir verre (${VIA[d.via] || d.via}) kl. ${at}${d.count > 1 ? `, ${d.count}. gang` : ""}.` });
    } else if (e.type === "checkin.sent") out.push(`Oppfølgingsspørsmål sendt kl. ${at}.`);
    else if (e.type === "checkin.answered") {
      const text = `Svar på oppfølgingen kl. ${at}: ${ANSWERS[d.answer] || d.answer}.`;
      if (d.answer === "worse") { worse = true; out.push({ worse: text }); } else out.push(text);
    } else if (e.type === "checkin.expired") out.push("Oppfølgingsspørsmålet kom ikke fram i tide.");
    else if (e.type === "checkin.failed") out.push("Oppfølgingsspørsmålet kunne ikke sendes.");
    else if (e.type === "dispatch.deleted") out.push(`Slettet av innringeren (${VIA[d.via] || d.via}) kl. ${at}.`);
    else if (e.type === "dispatch.expired") out.push(`Lenken gikk ut uten å bli åpnet (kl. ${at}).`);
  }
  return { out, worse };
}

function renderLive() {
  const list = $("live-list");
  list.replaceChildren();
  $("live-empty").hidden = live.mine.size > 0;
  for (const [id, dispatch] of [...live.mine].reverse()) {
    const { out, worse } = lines(live.events.get(id) || []);
    const items = out.map((line) => (typeof line === "string"
      ? el("li", { text: line })
      : el("li", { class: "worse-line" }, el("strong", { text: "⚠ " }), line.worse)));
    if (!items.length) items.push(el("li", { text: "Venter på hendelser …" }));
    list.append(el("li", { class: worse ? "worse" : "", "data-dispatch": id },
      el("h4", { text: dispatch.title }), el("ul", {}, ...items)));
  }
}

function startLive() {
  const tick = async () => {
    try { await pollEvents(); } catch (_error) { /* the bot restarting: try again */ }
    setTimeout(tick, 1000);
  };
  tick();
}

// --- the caller ---------------------------------------------------------------------------

let caller;

// The advice page, in the caller's "phone" (an iframe of the bot's own page) and in a new tab.
function openPage(url) {
  show("caller", { focus: false });
  $("caller-web").hidden = false;
  $("caller-page").src = url;
  $("caller-web-tab").href = url;
  $("caller-page").focus();
}

function isPageLink(link) {
  try {
    const url = new URL(link, location.href);
    return url.origin === location.origin && /^\/r\/[A-Za-z0-9_-]+$/.test(url.pathname);
  } catch (error) { return false; }
}

function openLink(link) {
  if (isPageLink(link.trim())) { openPage(link.trim()); return; }
  const payload = startPayload(link);
  if (!payload) { toast("Det er ikke en lenke fra SMS-en (…/r/… eller t.me/…?start=…)."); return; }
  show("caller", { focus: false });
  caller.send(`/start ${payload}`);
  caller.input.focus();
}

async function moveCheckin(fresh) {
  const pending = demo.pending;
  if (!pending || pending.minutes === null || pending.moved || !pending.opening) return;
  if (!fresh.length) return;
  pending.moved = true;
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const { ok, status, data } = await request(`demo/api/dispatches/${pending.id}/checkin`, {
      method: "POST", body: { minutes: pending.minutes },
    });
    if (ok) {
      const when = pending.minutes === 0 ? "med en gang" : `om ${pending.minutes} min`;
      caller.note(`Demo: oppfølgingsspørsmålet kommer ${when}, ikke etter ${pending.hours} timer `
        + "som det står i rådet.");
      return;
    }
    if (status !== 409) { caller.note(`Demo: kunne ikke flytte oppfølgingen (${data.message}).`); return; }
    await new Promise((resolve) => setTimeout(resolve, 700));
  }
}

// --- the leader ---------------------------------------------------------------------------

let leader;
let group;

async function loadRoles() {
  const { ok, data } = await request("demo/api/roles");
  if (!ok) return;
  const select = $("role");
  select.replaceChildren();
  for (const role of data.roles) select.append(el("option", { value: role.id, text: role.title }));
  if (data.default) select.value = data.default;
}

async function makeInvite() {
  const { ok, data } = await request("demo/api/invite", { method: "POST", body: { role: $("role").value } });
  if (!ok) { $("leader-status").textContent = `Ingen invitasjon: ${data.message || "feil"}`; return; }
  $("invite-link").textContent = data.deep_link;
  $("invite-result").hidden = false;
  $("leader-status").textContent = `Invitasjonen gjelder ${data.max_uses} ledere i en uke.`;
  $("open-invite").focus();
}

async function sendNow() {
  const { ok, data } = await request(`demo/api/leader/${leader.userId}/send-now`, { method: "POST", body: {} });
  if (!ok) { $("leader-status").textContent = `Ikke sendt: ${data.message || "feil"}`; return; }
  $("leader-status").textContent = data.sent
    ? `Ukens spørsmål er sendt (uke ${data.week}). Svar i chatten.`
    : "Denne uken har allerede fått spørsmålet sitt: det kommer ett i uken.";
  if (data.groups) {
    $("group-status").textContent = data.groups_sent
      ? "Ukens spørsmål er lagt ut i Ledergruppe."
      : "Ledergruppe har allerede fått ukens spørsmål: det kommer ett i uken.";
  }
}

async function linkGroup() {
  const { ok, data } = await request("demo/api/group-link", { method: "POST", body: { role: $("role").value } });
  if (!ok) { $("group-status").textContent = `Ingen gruppelenke: ${data.message || "feil"}`; return; }
  const payload = data.deep_link.split("?startgroup=")[1];
  if (await group.addBot(payload)) {
    $("group-status").textContent = "Boten er lagt til i Ledergruppe med en gruppelenke for «Demo HF» "
      + "(samme rolle). Ukens spørsmål kommer tirsdager kl. 09:00, eller nå med «Send ukens spørsmål nå».";
  }
}

// --- the admin ----------------------------------------------------------------------------

function findingList(findings) {
  if (!findings.length) return el("p", { class: "hint" }, el("span", { class: "badge good", text: "Ingen funn" }));
  const list = el("ul", { class: "findings" });
  for (const f of findings) {
    const kind = f.severity === "error" ? "Feil" : "Advarsel";
    list.append(el("li", { class: `${f.severity}-item` },
      el("strong", { text: `${kind}: ` }), el("code", { text: f.where }),
      f.field ? ` ${f.field}: ` : " ", f.message));
  }
  return list;
}

function countBadge(findings) {
  const errors = findings.filter((f) => f.severity === "error").length;
  const warnings = findings.length - errors;
  if (errors) return el("span", { class: "badge bad", text: `${errors} feil` });
  if (warnings) return el("span", { class: "badge warn", text: `${warnings} advarsler` });
  return el("span", { class: "badge good", text: "ok" });
}

function bubble(html) {
  return el("div", { class: "msg bot" }, renderHtml(html, null));
}

function topicView(topic, languages) {
  const columns = el("div", { class: "side-by-side" });
  for (const { id, name } of languages) {
    const t = topic.texts[id];
    const column = el("div", { class: "lang", lang: id }, el("h4", { text: name }));
    t.messages.forEach((html) => column.append(bubble(html)));
    const pills = el("div", { class: "pills" });
    t.buttons.forEach((label) => pills.append(el("span", { class: "pill", text: label })));
    column.append(el("h5", { text: "Knappene under rådet" }), pills,
      el("h5", { text: "Etter «Jeg blir verre»" }), bubble(t.worse),
      el("h5", { text: "SMS-en" }), el("p", { class: "sms", text: t.sms }));
    columns.append(column);
  }
  const status = topic.status === "approved" ? "godkjent" : "utkast";
  const extras = [`Status: ${status}`];
  if (topic.example) extras.push("eksempeltekst");
  if (topic.risk_groups.length) extras.push(`vist med alle risikogrupper (${topic.risk_groups.join(", ")})`);
  if (topic.checkin_hours) extras.push(`oppfølging etter ${topic.checkin_hours} timer`);
  return el("details", { class: "item", "data-topic": topic.id },
    el("summary", {}, topic.title, " ", countBadge(topic.findings)),
    el("div", { class: "inner" },
      el("p", { class: "file" }, el("code", { text: topic.file }), ` · ${extras.join(" · ")}`),
      findingList(topic.findings), columns));
}

function programmeView(programme, languages) {
  const inner = el("div", { class: "inner" },
    el("p", { class: "file" }, el("code", { text: programme.file })),
    findingList(programme.findings));
  let all = [...programme.findings];
  for (const role of programme.roles) {
    const box = el("div", { class: "role" },
      el("h4", { text: `${role.titles.nb} / ${role.titles.nn} (${role.questions.length} spørsmål)` }));
    for (const q of role.questions) {
      all = all.concat(q.findings);
      const columns = el("div", { class: "side-by-side" });
      for (const { id, name } of languages) {
        columns.append(el("div", { class: "lang", lang: id }, el("h4", { text: name }), bubble(q.texts[id])));
      }
      box.append(el("div", { class: "question", "data-question": q.id },
        el("h5", {}, `${q.number}. ${q.theme} / ${q.id} `, countBadge(q.findings)),
        q.findings.length ? findingList(q.findings) : null, columns));
    }
    inner.append(box);
  }
  return el("details", { class: "item", "data-programme": programme.id },
    el("summary", {}, `Spørsmål: ${programme.title} `, countBadge(all)), inner);
}

async function loadContent() {
  if (demo.contentLoaded) return;
  demo.contentLoaded = true;
  const { ok, data } = await request("demo/api/content");
  if (!ok) {
    demo.contentLoaded = false;
    $("content-summary").textContent = `Kunne ikke hente innholdet: ${data.message || "feil"}`;
    return;
  }
  $("content-summary").textContent =
    `Innholdssjekken: ${data.errors} feil og ${data.warnings} advarsler. ` +
    `${data.topics.length} råd og ${data.programmes.length} spørsmålsprogrammer.`;
  const general = $("content-general");
  general.replaceChildren();
  if (data.general.length) {
    general.append(el("h3", { text: "Funn utenfor innholdsfilene (kataloger, SMS)" }), findingList(data.general));
  }
  const content = $("content");
  content.replaceChildren(el("h3", { text: "Råd etter en samtale" }));
  data.topics.forEach((topic, index) => {
    const view = topicView(topic, data.languages);
    if (index === 0) view.open = true;
    content.append(view);
  });
  content.append(el("h3", { text: "Ukentlige spørsmål til ledere" }));
  data.programmes.forEach((programme) => content.append(programmeView(programme, data.languages)));
}

// --- start --------------------------------------------------------------------------------

async function main() {
  for (const button of document.querySelectorAll("[data-persona]")) {
    button.addEventListener("click", () => show(button.dataset.persona));
  }
  const key = await request("demo/api/key");
  if (!key.ok) {
    $("form-error").textContent = "Demo-API-et svarer ikke. Kjører boten i demomodus?";
    return;
  }
  demo.key = key.data.key;
  demo.bot = key.data.bot_username || "";

  caller = new Chat($("caller-phone"), { key: "caller", firstName: "Kari", label: "innringeren" });
  caller.onMessages((fresh) => moveCheckin(fresh));
  leader = new Chat($("leader-phone"), { key: "leader", firstName: "Lise", label: "lederen" });
  group = new GroupChat($("group-phone"), leader);

  $("topic").addEventListener("change", topicChosen);
  $("dispatch-form").addEventListener("submit", createDispatch);
  $("open-page-as-caller").addEventListener("click", () => openPage($("advice-url").href));
  $("open-as-caller").addEventListener("click", () => {
    if (demo.pending) demo.pending.opening = true;
    openLink($("deep-link").textContent);
  });
  $("link-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const link = $("caller-link").value;
    if (demo.pending && link.trim() === demo.pending.link) demo.pending.opening = true;
    openLink(link);
  });
  $("make-invite").addEventListener("click", makeInvite);
  $("open-invite").addEventListener("click", () => {
    const payload = startPayload($("invite-link").textContent);
    if (payload) { leader.send(`/start ${payload}`); leader.input.focus(); }
  });
  $("send-now").addEventListener("click", sendNow);
  $("link-group").addEventListener("click", linkGroup);

  show(location.hash.slice(1) || "nurse", { focus: false });
  await Promise.all([loadTopics(), loadRoles()]);
  startLive();
  document.body.dataset.ready = "true";
}

main();
