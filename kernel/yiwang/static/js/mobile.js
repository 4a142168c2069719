// 网格员手机端: the report form's offline draft, its photos and the phone's location.
//
// The draft (text fields, photos as Blobs, location, the idempotency key) is kept in IndexedDB
// as the worker types. Sending goes through fetch to the form's own POST route; when the network
// is down the draft is kept as 待发送 and sent on the `online` event (or when the page is opened
// again) with the SAME key, so the server never makes a second case. Observable for tests: the
// form's `data-draft-state` is "" → "saved" | "pending" | "sending" | "sent", and #m-banner says
// the same in words. Without JavaScript the form is an ordinary multipart POST.
(() => {
  const DB = "yiwang-mobile";
  const STORE = "drafts";
  const SKIP = new Set(["csrf_token", "channel_key", "confirm_new", "files"]);

  // --- IndexedDB ----------------------------------------------------------------------------------
  let opened = null;
  const db = () => {
    if (!opened) {
      opened = new Promise((resolve, reject) => {
        const req = indexedDB.open(DB, 1);
        req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "id" });
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
    }
    return opened;
  };
  const run = async (mode, fn) => {
    const conn = await db();
    return new Promise((resolve, reject) => {
      const tx = conn.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req && req.result);
      tx.onerror = () => reject(tx.error);
    });
  };
  const load = (id) => run("readonly", (s) => s.get(id));
  const store = (draft) => run("readwrite", (s) => s.put(draft));
  const drop = (id) => run("readwrite", (s) => s.delete(id));
  const draftId = (user) => "report:" + user;

  const csrf = () => {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  };

  // --- the report form ----------------------------------------------------------------------------
  const report = async (form) => {
    if (form.dataset.draftReady) return;
    form.dataset.draftReady = "1";
    const id = draftId(form.dataset.user || "");
    const thumbs = form.querySelector("[data-thumbs]");
    const photoInput = form.querySelector('input[type="file"][name="files"]');
    const keyInput = form.querySelector('input[name="channel_key"]');
    const maxFiles = parseInt(form.dataset.maxFiles || "9", 10);
    const discard = form.querySelector("[data-draft-discard]");
    let draft = null;
    let timer = null;

    const say = (text, kind) => {
      const banner = document.getElementById("m-banner"); // the current page's (content may be swapped)
      if (!banner) return;
      banner.hidden = !text;
      banner.textContent = text || "";
      banner.className = "m-banner" + (kind ? " " + kind : "");
    };
    const setState = (state) => { form.dataset.draftState = state; };

    const values = () => {
      const out = {};
      for (const el of form.elements) {
        if (!el.name || SKIP.has(el.name) || el.type === "file" || el.type === "button" || el.type === "submit") continue;
        if ((el.type === "radio" || el.type === "checkbox") && !el.checked) continue;
        out[el.name] = el.value;
      }
      return out;
    };
    const restore = (saved) => {
      for (const el of form.elements) {
        if (!el.name || !(el.name in saved)) continue;
        if (el.type === "radio" || el.type === "checkbox") el.checked = el.value === saved[el.name];
        else if (el.type !== "file") el.value = saved[el.name];
      }
    };

    const showPhotos = () => {
      if (!thumbs) return;
      for (const img of thumbs.querySelectorAll("img")) URL.revokeObjectURL(img.src);
      thumbs.textContent = "";
      (draft.photos || []).forEach((p, i) => {
        const li = document.createElement("li");
        const img = document.createElement("img");
        img.src = URL.createObjectURL(p.blob);
        img.alt = p.name;
        const rm = document.createElement("button");
        rm.type = "button";
        rm.className = "m-thumb-remove";
        rm.textContent = "删除";
        rm.setAttribute("aria-label", "删除照片 " + p.name);
        rm.addEventListener("click", async () => {
          draft.photos.splice(i, 1);
          showPhotos();
          await save();
        });
        li.append(img, rm);
        thumbs.append(li);
      });
    };

    const save = async (state) => {
      if (draft.state === "sent") return; // its case exists: nothing may bring the draft back
      draft.values = values();
      draft.key = keyInput.value;
      draft.updated = Date.now();
      if (state) draft.state = state;
      if (form.querySelector('input[name="confirm_new"]')) draft.confirm = true;
      await store(draft);
      if (discard) discard.hidden = false;
      if (draft.state === "pending") {
        setState("pending");
        say("网络不可用，草稿已保存为待发送，联网后将自动发送（不会重复上报）。", "warn");
      } else if (form.dataset.draftState !== "sending") {
        setState("saved");
      }
    };
    const saveSoon = () => {
      clearTimeout(timer);
      timer = setTimeout(() => save().catch(() => {}), 250);
    };

    // Start: the stored draft wins over the fresh form (its key above all); else a new draft with
    // the key the server rendered (made when this draft began).
    try {
      await db();
    } catch (err) {
      return; // no IndexedDB (a private window on an old phone): the form posts as a plain form
    }
    draft = await load(id).catch(() => null);
    if (draft && draft.key) {
      // A page the server re-rendered (problems, likely duplicates) shows what was sent; a fresh
      // one gets the draft's values back.
      const main = document.getElementById("main");
      const fresh = !(main && main.querySelector(".alert, .similar"));
      if (fresh) restore(draft.values || {});
      else draft.values = values();
      keyInput.value = draft.key;
      if (draft.values && draft.values.case_type && fresh) {
        const sel = form.querySelector('select[name="case_type"]');
        if (sel && window.htmx) window.htmx.trigger(sel, "change");
      }
      showPhotos();
      if (discard) discard.hidden = false;
      setState(draft.state === "pending" ? "pending" : "saved");
      if (draft.state === "pending") say("有一份待发送的上报，联网后将自动发送。", "warn");
      else if (fresh) say("已恢复未提交的草稿。", "");
    } else {
      draft = { id, user: form.dataset.user || "", key: keyInput.value, values: {}, photos: [], state: "saved" };
    }

    // The type's own fields arrive by htmx: give them their saved values.
    form.addEventListener("htmx:afterSwap", (event) => {
      if (event.target && event.target.id === "type-fields" && draft.values) {
        restore(draft.values);
      }
    });
    form.addEventListener("input", saveSoon);
    form.addEventListener("change", (event) => {
      if (event.target !== photoInput) saveSoon();
    });

    if (photoInput) {
      photoInput.addEventListener("change", async () => {
        const picked = Array.from(photoInput.files || []);
        photoInput.value = ""; // the photos live in the draft now
        for (const file of picked) {
          if (draft.photos.length >= maxFiles) {
            say("照片最多 " + maxFiles + " 张，多出的未添加。", "warn");
            break;
          }
          const blob = await shrink(file);
          // A scaled-down photo is a JPEG: its name says so (the server checks names against content).
          const name = blob === file ? file.name || "photo.jpg" : (file.name || "photo").replace(/\.[^.]*$/, "") + ".jpg";
          draft.photos.push({ name, type: blob.type, blob });
        }
        showPhotos();
        await save();
      });
    }

    if (discard) {
      discard.addEventListener("click", async () => {
        if (!window.confirm("确定清空这份草稿吗？")) return;
        await drop(id);
        window.location.assign(form.action);
      });
    }

    // --- location ---------------------------------------------------------------------------------
    const lat = form.querySelector('input[name="lat"]');
    const lon = form.querySelector('input[name="lon"]');
    const status = form.querySelector("[data-geo-status]");
    const locateBtn = form.querySelector("[data-geo-locate]");
    const centroidBtn = form.querySelector("[data-geo-centroid]");
    const grid = form.querySelector('select[name="node"]');
    const tell = (text) => { if (status) status.textContent = text; };
    const centroid = () => {
      const opt = grid && grid.selectedOptions[0];
      return opt && opt.dataset.lat ? [opt.dataset.lat, opt.dataset.lon] : null;
    };
    const showCentroid = () => { if (centroidBtn) centroidBtn.hidden = !centroid(); };
    const locate = () => {
      if (!("geolocation" in navigator)) {
        tell("此设备不支持定位，请手动填写或使用网格中心点。");
        return;
      }
      tell("正在定位…");
      navigator.geolocation.getCurrentPosition(
        (pos) => {
          lat.value = pos.coords.latitude.toFixed(6);
          lon.value = pos.coords.longitude.toFixed(6);
          tell("已定位（GPS，精度约 " + Math.round(pos.coords.accuracy) + " 米）。");
          saveSoon();
        },
        (err) => {
          tell(err.code === 1 ? "未获得定位权限：可手动填写、使用网格中心点或留空。"
            : "定位失败：可点「重新定位」再试，或手动填写、使用网格中心点。");
        },
        { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 },
      );
    };
    if (locateBtn) {
      locateBtn.hidden = false;
      locateBtn.addEventListener("click", locate);
    }
    if (centroidBtn) {
      centroidBtn.addEventListener("click", () => {
        const c = centroid();
        if (!c) return;
        [lat.value, lon.value] = c;
        tell("已使用网格中心点作为位置。");
        saveSoon();
      });
    }
    if (grid) grid.addEventListener("change", showCentroid);
    showCentroid();
    if (lat && lon && !lat.value && !lon.value) locate();
    else if (lat && lat.value) tell("已有位置；可点「重新定位」更新。");

    // --- sending ------------------------------------------------------------------------------------
    // A send that fails while the phone says it is online (the network just came back and the
    // first request died with it, a gateway is down) is retried with growing pauses.
    const PAUSES = [2000, 5000, 15000, 30000, 60000];
    let retries = 0;
    let retryTimer = null;
    const pending = async () => {
      await save("pending");
      clearTimeout(retryTimer);
      if (navigator.onLine) {
        const pause = PAUSES[Math.min(retries, PAUSES.length - 1)];
        retries += 1;
        retryTimer = setTimeout(() => {
          if (document.body.contains(form) && draft.state === "pending") send().catch(() => pending());
        }, pause);
      }
    };
    const send = async () => {
      if (form.dataset.draftState === "sending") return;
      await save();
      if (!navigator.onLine) return pending();
      setState("sending");
      say("正在发送…", "");
      const body = new FormData();
      for (const [name, value] of Object.entries(draft.values)) body.append(name, value);
      body.append("channel_key", draft.key);
      body.append("csrf_token", csrf());
      if (draft.confirm) body.append("confirm_new", "1");
      for (const p of draft.photos) body.append("files", p.blob, p.name);
      let answer;
      try {
        answer = await fetch(form.action, {
          method: "POST", body, credentials: "same-origin", headers: { "X-CSRF-Token": csrf() },
        });
      } catch (err) {
        setState("");
        return pending(); // no connection (or it dropped mid-way): the same key next time
      }
      const path = new URL(answer.url, window.location.href).pathname;
      if (answer.ok && /^\/m\/tasks\/\d+$/.test(path)) {
        const html = await answer.text();
        const serial = (html.match(/data-case-serial="([^"]+)"/) || [])[1] || "";
        draft.state = "sent";
        clearTimeout(timer);
        clearTimeout(retryTimer);
        await drop(id);
        setState("sent");
        say(serial ? "已上报，事件编号 " + serial : "已上报。", "ok");
        window.setTimeout(() => window.location.assign(answer.url), 600);
        return;
      }
      if (path === "/login") {
        setState("");
        await pending();
        say("登录已失效：请重新登录，回到本页后草稿将自动发送。", "warn");
        return;
      }
      if ([0, 502, 503, 504].includes(answer.status)) {
        setState("");
        return pending();
      }
      // Problems or likely duplicates: the server's page replaces this one's content, the draft
      // (photos included) stays and is picked up by the new form.
      draft.state = "saved";
      await store(draft);
      setState("saved");
      const doc = new DOMParser().parseFromString(await answer.text(), "text/html");
      const main = document.getElementById("main");
      const fresh = doc.getElementById("main");
      if (main && fresh) {
        main.innerHTML = fresh.innerHTML;
        if (window.htmx) window.htmx.process(main);
        const next = main.querySelector('form[data-widget="report"]');
        if (next) {
          next.dataset.mounted = "1";
          await report(next);
          if (answer.status === 200) say("附近已有同类事件，请确认后再上报；草稿已保留。", "warn");
          else say("上报信息有误，请按提示修改；草稿已保留。", "warn");
        } else {
          say("提交未成功（" + answer.status + "），草稿已保留。", "warn");
        }
        window.scrollTo(0, 0);
      }
    };

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (form.querySelector('input[name="confirm_new"]')) draft.confirm = true;
      send().catch(() => pending());
    });
    const onOnline = (event) => {
      if (!document.body.contains(form)) { // this form was replaced (a re-rendered page)
        window.removeEventListener("online", onOnline);
        document.removeEventListener("visibilitychange", onOnline);
        return;
      }
      if (event && event.type === "visibilitychange" && document.visibilityState !== "visible") return;
      if (event && event.type === "online") retries = 0;
      if (draft.state === "pending" && navigator.onLine) send().catch(() => pending());
    };
    window.addEventListener("online", onOnline);
    document.addEventListener("visibilitychange", onOnline);
    window.addEventListener("offline", () => {
      if (document.body.contains(form) && draft.state !== "pending") {
        say("当前无网络：可继续填写，提交后将在联网时自动发送。", "warn");
      }
    });
    if (draft.state === "pending" && navigator.onLine) send().catch(() => pending());
  };

  // Large camera photos are scaled down before they are stored and sent (weak networks); the
  // server re-encodes every image anyway. Anything that fails keeps the original.
  const MAX_SIDE = 2048;
  const shrink = async (file) => {
    if (!/^image\/(jpeg|png|webp)$/.test(file.type) || file.size < 1024 * 1024 || !window.createImageBitmap) return file;
    try {
      const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
      const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
      const canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
      return blob && blob.size < file.size ? blob : file;
    } catch (err) {
      return file;
    }
  };

  // The home page: a draft waiting to be sent is pointed out (opening the form sends it).
  const draftnote = async (el) => {
    const draft = await load(draftId(el.dataset.user || "")).catch(() => null);
    if (!draft) return;
    el.hidden = false;
    const a = document.createElement("a");
    a.href = "/m/report";
    a.textContent = draft.state === "pending" ? "有一份待发送的上报，点此发送" : "有一份未提交的草稿，点此继续填写";
    el.append(a);
  };

  window.yiwang = window.yiwang || { widgets: {} };
  window.yiwang.widgets.report = (form) => { report(form); };
  window.yiwang.widgets.draftnote = (el) => { draftnote(el); };
})();
