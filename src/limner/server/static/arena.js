// Limner arena: fetch an anonymous battle, vote once, reveal the models, next.
"use strict";

let battle = null;

async function load(prompt) {
  const err = document.getElementById("battle-error");
  err.hidden = true;
  document.getElementById("battle-prompt").textContent = prompt ? "Generating both images…" : "Loading a battle…";
  const r = await fetch("/arena/api/battles", {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(prompt ? { prompt } : {}),
  });
  const data = await r.json();
  if (!r.ok) { err.textContent = data.error ? data.error.message : "Could not start a battle."; err.hidden = false; return; }
  battle = data;
  document.getElementById("battle-prompt").textContent = data.prompt;
  // votes open only once both pictures have arrived: a broken image is never voted on
  document.querySelectorAll("#vote-buttons button").forEach((b) => { b.disabled = true; });
  const shown = ["a", "b"].map((side) => new Promise((resolve, reject) => {
    const img = document.getElementById(`img-${side}`);
    img.onload = resolve;
    img.onerror = reject;
    img.src = data.images[side];
  }));
  Promise.all(shown).then(() => {
    if (battle === data) document.querySelectorAll("#vote-buttons button").forEach((b) => { b.disabled = false; });
  }, () => {
    if (battle !== data) return;
    battle = null;
    err.textContent = "One of the images could not be loaded; try the next battle.";
    err.hidden = false;
    document.getElementById("vote-buttons").hidden = true;
    document.getElementById("after-vote").hidden = false;
    document.getElementById("vote-status").textContent = "";
  });
  document.getElementById("img-a").alt = `Image A for: ${data.prompt}`;
  document.getElementById("img-b").alt = `Image B for: ${data.prompt}`;
  document.getElementById("name-a").textContent = "";
  document.getElementById("name-b").textContent = "";
  document.querySelectorAll(".pair figure").forEach((f) => f.classList.remove("picked"));
  document.getElementById("vote-buttons").hidden = false;
  document.getElementById("after-vote").hidden = true;
}

async function vote(outcome) {
  if (!battle) return;
  document.querySelectorAll("#vote-buttons button").forEach((b) => { b.disabled = true; });
  const r = await fetch("/arena/api/votes", {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ battle_id: battle.id, token: battle.token, outcome }),
  });
  const data = await r.json();
  if (!r.ok) {
    const err = document.getElementById("battle-error");
    err.textContent = data.error ? data.error.message : "Your vote was not recorded."; err.hidden = false;
    document.getElementById("vote-status").textContent = "";
    document.getElementById("after-vote").hidden = false;
    return;
  }
  document.getElementById("name-a").textContent = data.models.a;
  document.getElementById("name-b").textContent = data.models.b;
  if (outcome === "a" || outcome === "b") document.getElementById(`side-${outcome}`).classList.add("picked");
  const said = { a: `You picked ${data.models.a}.`, b: `You picked ${data.models.b}.`, tie: "You called it a tie.", both_bad: "You found both bad." };
  document.getElementById("vote-status").textContent = `${said[outcome]} Thank you — your vote is counted.`;
  document.getElementById("vote-buttons").hidden = true;
  document.getElementById("after-vote").hidden = false;
  document.getElementById("next-battle").focus();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("#vote-buttons button").forEach((b) => b.addEventListener("click", () => vote(b.dataset.outcome)));
  document.getElementById("next-battle").addEventListener("click", () => load(null));
  const live = document.getElementById("live-form"); // only for a signed-in account
  if (live) live.addEventListener("submit", (e) => {
    e.preventDefault();
    const p = document.getElementById("live-prompt").value.trim();
    if (p) load(p);
  });
  load(null);
});
