// The storefront: catalog, search, product pages, the chat's cart, checkout and orders.
import { api, ApiError } from "./api.js";
import { confirm, haptic, native, nativeBack, openInvoice, tg } from "./telegram.js";
import { h, photo, toast } from "./ui.js";

const POLL_MS = 2000;

let T = {};
let stack = [];
let mainHandler = null;
let pollTimer = null;
let cartUnits = 0;

const view = document.getElementById("view");
const search = document.getElementById("search");

function say(error) {
  if (error instanceof ApiError && error.message) return error.message;
  return T.offline || "Could not reach the shop.";
}

function setMain(text, handler) {
  mainHandler = handler;
  if (!native || !tg) return;
  tg.MainButton.setText(text);
  tg.MainButton.show();
}

function clearMain() {
  mainHandler = null;
  if (native && tg) tg.MainButton.hide();
}

function setTab(name) {
  for (const b of document.querySelectorAll(".tabs button")) {
    b.classList.toggle("on", b.dataset.tab === name);
  }
}

function setCartUnits(units) {
  cartUnits = units;
  document.getElementById("tab-cart").textContent = units ? `${T.cart} (${units})` : T.cart;
}

async function show(entry, replace) {
  clearTimeout(pollTimer);
  clearMain();
  if (replace) stack[stack.length - 1] = entry;
  else stack.push(entry);
  const depth = stack.length;
  document.getElementById("back").hidden = nativeBack || depth < 2;
  if (nativeBack) depth > 1 ? tg.BackButton.show() : tg.BackButton.hide();
  setTab(entry.tab);
  try {
    const node = await entry.render(entry);
    if (stack[stack.length - 1] !== entry) return; // the shopper moved on meanwhile
    view.replaceChildren(node);
    window.scrollTo(0, 0);
  } catch (error) {
    if (stack[stack.length - 1] !== entry) return;
    view.replaceChildren(h("div", { class: "empty", role: "alert" }, say(error)));
  }
}

function go(entry) {
  return show(entry, false);
}

function refresh() {
  const entry = stack[stack.length - 1];
  if (entry) show(entry, true);
}

function back() {
  if (stack.length < 2) return;
  stack.pop();
  show(stack.pop(), false);
}

function root(entry) {
  document.getElementById("toast").hidden = true;
  stack = [];
  search.value = "";
  return go(entry);
}

// --- catalog -------------------------------------------------------------------------------

function productCard(p) {
  return h(
    "button",
    { class: "card", type: "button", "data-sku": p.sku, onclick: () => go(productView(p.sku)) },
    photo(p, "thumb"),
    h(
      "div",
      { class: "body" },
      h("span", { class: "title" }, p.title),
      h("span", { class: "price" }, p.price.text),
      h("span", { class: "hint" + (p.in_stock === 0 ? " out" : "") }, p.stock_text),
    ),
  );
}

function catalogView(slug) {
  return {
    tab: "catalog",
    render: async () => {
      const data = await api("catalog" + (slug ? "?category=" + encodeURIComponent(slug) : ""));
      const node = h("section", { class: "catalog" });
      node.append(h("h1", {}, data.category ? data.category.title : T.catalog));
      if (data.categories.length) {
        node.append(
          h(
            "div",
            { class: "chips" },
            data.categories.map((c) =>
              h("button", { class: "chip", type: "button", onclick: () => go(catalogView(c.slug)) }, c.title),
            ),
          ),
        );
      }
      const grid = h("div", { class: "grid" }, data.products.map(productCard));
      node.append(grid);
      if (slug && !data.products.length && !data.categories.length) {
        node.append(h("div", { class: "empty" }, T.no_products));
      }
      let next = data.next;
      if (next) {
        node.append(
          moreButton({}, async () => {
            const page = await api(`catalog?category=${encodeURIComponent(slug)}&after=${next}`);
            grid.append(...page.products.map(productCard));
            next = page.next;
            return Boolean(next);
          }),
        );
      }
      return node;
    },
  };
}

// Show more: `loadNext` appends the next page and answers whether there may be more after it.
function moreButton(attrs, loadNext) {
  const more = h("button", { class: "secondary", type: "button", ...attrs }, T.more);
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      more.hidden = !(await loadNext());
    } catch (error) {
      toast(say(error));
    }
    more.disabled = false;
  });
  return more;
}

function searchView(text) {
  return {
    tab: "catalog",
    render: async () => {
      const data = await api("search?q=" + encodeURIComponent(text));
      if (!data.products.length) return h("div", { class: "empty" }, T.nothing_found);
      return h("section", { class: "results" }, h("div", { class: "grid" }, data.products.map(productCard)));
    },
  };
}

function productView(sku) {
  return {
    tab: "catalog",
    render: async () => {
      const p = await api("products/" + encodeURIComponent(sku));
      let quantity = 1;
      const count = h("span", { "data-role": "quantity" }, "1");
      const step = (delta) => {
        quantity = Math.max(1, Math.min(p.max_quantity || 1, quantity + delta));
        count.textContent = String(quantity);
      };
      const add = async () => {
        if (button.disabled) return; // Telegram's MainButton tapped again meanwhile
        button.disabled = true;
        try {
          const cart = await api("cart/items", { sku: p.sku, quantity });
          setCartUnits(cart.units);
          haptic("success");
          toast(cart.note);
        } catch (error) {
          haptic("error");
          toast(say(error));
        }
        button.disabled = false;
      };
      const canBuy = p.in_stock === null || p.in_stock > 0;
      const button = h("button", { class: "primary in-page-main", type: "button", disabled: !canBuy, onclick: add }, T.add_to_cart);
      if (canBuy) setMain(T.add_to_cart, add);
      return h(
        "article",
        { class: "product" },
        photo(p, "large", true),
        h("h1", {}, p.title),
        h("div", { class: "row spread" },
          h("span", { class: "price" }, p.price.text),
          h("span", { class: "hint" + (canBuy ? "" : " out") }, p.stock_text)),
        p.approx.length ? h("div", { class: "hint approx" }, p.approx.map((a) => a.text).join(" · ")) : null,
        p.description ? h("div", { class: "panel" }, h("p", {}, p.description)) : null,
        canBuy
          ? h("div", { class: "row spread" },
              h("span", { class: "hint" }, T.quantity),
              h("span", { class: "stepper" },
                h("button", { type: "button", "aria-label": "−", onclick: () => step(-1) }, "−"),
                count,
                h("button", { type: "button", "aria-label": "+", onclick: () => step(1) }, "+")))
          : null,
        button,
      );
    },
  };
}

// --- cart ----------------------------------------------------------------------------------

function cartView() {
  const entry = {
    tab: "cart",
    render: async () => renderCart(entry, await api("cart")),
  };
  return entry;
}

function renderCart(entry, cart) {
  setCartUnits(cart.units);
  if (!cart.lines.length) {
    clearMain(); // nothing to check out
    return h("div", { class: "empty" }, T.cart_empty);
  }
  const act = async (path, body) => {
    try {
      const fresh = await api(path, body);
      if (fresh.note) toast(fresh.note);
      view.replaceChildren(renderCart(entry, fresh));
    } catch (error) {
      toast(say(error));
      refresh();
    }
  };
  const lines = cart.lines.map((ln) =>
    h("div", { class: "line", "data-sku": ln.sku },
      h("span", { class: "title" }, ln.title),
      h("span", { class: "price" }, ln.line_total.text),
      ln.note ? h("span", { class: "hint out" }, ln.note) : null,
      ln.added_price ? h("span", { class: "hint" }, `${ln.added_price.text} → ${ln.price.text}`) : null,
      h("div", { class: "controls" },
        h("span", { class: "stepper" },
          h("button", { type: "button", "aria-label": "−", onclick: () => act(`cart/lines/${ln.product_id}`, { delta: -1 }) }, "−"),
          h("span", {}, String(ln.quantity)),
          h("button", { type: "button", "aria-label": "+", onclick: () => act(`cart/lines/${ln.product_id}`, { delta: 1 }) }, "+")),
        h("span", { class: "hint" }, ln.price.text),
        h("button", { class: "secondary danger", type: "button", onclick: () => act(`cart/lines/${ln.product_id}/remove`, {}) }, T.remove))));
  const code = h("input", { type: "text", placeholder: T.promo, autocomplete: "off", maxlength: "32" });
  const promo = cart.promo;
  const checkout = async () => {
    if (button.disabled) return; // Telegram's MainButton tapped again meanwhile
    button.disabled = true;
    try {
      const order = await api("checkout", { fingerprint: cart.fingerprint });
      setCartUnits(0);
      openInvoice(order);
      root(orderView(order.id));
    } catch (error) {
      haptic("error");
      toast(say(error));
      button.disabled = false;
      if (error.status === 409) refresh();
    }
  };
  const button = h("button", { class: "primary in-page-main", type: "button", onclick: checkout }, T.checkout);
  setMain(T.checkout, checkout);
  return h("section", { class: "cart" },
    h("h1", {}, T.cart),
    h("div", { class: "panel" }, lines),
    h("div", { class: "panel" },
      promo && promo.discount ? h("div", { class: "row spread" }, h("span", {}, promo.label), h("span", {}, "−" + promo.discount.text)) : null,
      promo && promo.refusal ? h("p", { class: "hint out" }, promo.refusal) : null,
      h("div", { class: "row spread" }, h("span", { class: "total" }, T.total), h("span", { class: "total", "data-role": "total" }, cart.total.text)),
      h("form", { class: "promo", onsubmit: (e) => { e.preventDefault(); if (code.value.trim()) act("cart/promo", { code: code.value.trim() }); } },
        code, h("button", { type: "submit" }, T.apply))),
    button,
    h("button", { class: "secondary danger", type: "button", onclick: () => act("cart/empty", {}) }, T.empty_cart));
}

// --- orders --------------------------------------------------------------------------------

const ORDERS_PAGE = 20; // bot/webapp/orders_api.py PAGE_SIZE

function orderRow(o) {
  return h("button", { class: "item", type: "button", "data-order": o.id, onclick: () => go(orderView(o.id)) },
    h("div", { class: "row spread" }, h("strong", {}, o.title), h("span", {}, o.total_text)),
    h("span", { class: "hint" }, o.items.map((i) => `${i.title} × ${i.quantity}`).join(", ")),
    h("span", { class: "hint" }, o.status_text));
}

function ordersView() {
  return {
    tab: "orders",
    render: async () => {
      const orders = await api("orders");
      if (!orders.length) return h("div", { class: "empty" }, T.orders_empty);
      const list = h("div", {}, orders.map(orderRow));
      const node = h("section", { class: "list" }, h("h1", {}, T.orders), list);
      // The API answers a page of ORDERS_PAGE, newest first; a full page may have older ones.
      let last = orders[orders.length - 1].id;
      if (orders.length >= ORDERS_PAGE) {
        node.append(
          moreButton({ id: "orders-more" }, async () => {
            const page = await api(`orders?before=${last}`);
            list.append(...page.map(orderRow));
            if (page.length) last = page[page.length - 1].id;
            return page.length >= ORDERS_PAGE;
          }),
        );
      }
      return node;
    },
  };
}

function orderView(id) {
  const entry = {
    tab: "orders",
    orderId: id,
    render: async () => {
      const order = await api("orders/" + id);
      if (order.pending) watch(entry, order.status);
      return renderOrder(order);
    },
  };
  return entry;
}

// Paid in Crypto Bot: the settlement (webhook or reconciliation) flips the order. The page
// asks quietly and redraws only when the status changed (no jump to the top, no MainButton
// hidden and shown again every few seconds while the shopper looks at it).
function watch(entry, status) {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(async () => {
    if (stack[stack.length - 1] !== entry) return;
    let fresh = null;
    try {
      fresh = await api("orders/" + entry.orderId);
    } catch (error) {
      fresh = null; // offline a moment: ask again later
    }
    if (stack[stack.length - 1] !== entry) return;
    if (fresh && fresh.status !== status) refresh();
    else watch(entry, status);
  }, POLL_MS);
}

function renderOrder(order) {
  const act = async (path) => {
    const entry = stack[stack.length - 1];
    try {
      const fresh = await api(path, {});
      if (stack[stack.length - 1] !== entry) return; // the shopper moved on meanwhile
      clearTimeout(pollTimer);
      clearMain(); // a cancelled order's page has no Pay
      view.replaceChildren(renderOrder(fresh));
      if (fresh.pending) watch(entry, fresh.status);
    } catch (error) {
      toast(say(error));
    }
  };
  const items = h("div", { class: "panel" },
    order.items.map((i) => h("div", { class: "row spread" }, h("span", {}, `${i.title} × ${i.quantity}`))),
    order.promo ? h("div", { class: "row spread hint" }, h("span", {}, order.promo.label), h("span", {}, "−" + order.promo.discount.text)) : null,
    h("div", { class: "row spread" }, h("span", { class: "total" }, T.total), h("span", { class: "total" }, order.total_text)));
  const node = h("section", { class: "order", "data-status": order.status },
    h("h1", {}, order.title),
    h("p", {}, h("span", { class: "status" + (order.pending ? " pulse" : "") }, order.status_text)),
    items);
  if (order.pending) {
    const pay = () => openInvoice(order);
    node.append(
      h("div", { class: "panel" }, h("p", {}, T.waiting), h("p", { class: "hint" }, order.deadline_text)),
      h("button", { class: "primary in-page-main", type: "button", onclick: pay }, T.pay),
      h("div", { class: "row spread" },
        h("button", { class: "secondary", type: "button", onclick: () => act(`orders/${order.id}/check`) }, T.check),
        h("button", { class: "secondary danger", type: "button", onclick: () => confirmCancel(order, act) }, T.cancel)));
    setMain(T.pay, pay);
  } else if (order.goods.length) {
    node.append(
      h("div", { class: "panel goods-panel" },
        h("p", {}, h("strong", {}, T.paid)),
        order.goods.map((g) => [
          order.goods.length > 1 ? h("h2", {}, g.title) : null,
          h("ul", { class: "goods" }, g.items.map((item) => h("li", {}, item))),
        ]),
        h("p", { class: "hint" }, T.goods_in_chat)));
  }
  return node;
}

function confirmCancel(order, act) {
  confirm(order.confirm_cancel, (ok) => ok && act(`orders/${order.id}/cancel`));
}

// --- start -------------------------------------------------------------------------------

async function start() {
  if (tg) {
    tg.ready();
    tg.expand();
    if (nativeBack) tg.BackButton.onClick(back);
    tg.MainButton.onClick(() => mainHandler && mainHandler());
    if (native) document.documentElement.classList.add("native");
  }
  let session;
  try {
    session = await api("session");
  } catch (error) {
    view.replaceChildren(h("div", { class: "empty", role: "alert" }, say(error)));
    return;
  }
  T = session.texts;
  document.documentElement.lang = session.language;
  document.title = T.shop;
  search.placeholder = T.search;
  document.getElementById("tab-catalog").textContent = T.catalog;
  document.getElementById("tab-orders").textContent = T.orders;
  setCartUnits(session.cart_units);
  document.getElementById("bar").hidden = false;
  document.getElementById("back").addEventListener("click", back);
  document.getElementById("tab-catalog").addEventListener("click", () => root(catalogView("")));
  document.getElementById("tab-cart").addEventListener("click", () => root(cartView()));
  document.getElementById("tab-orders").addEventListener("click", () => root(ordersView()));
  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    const text = search.value.trim();
    typing = setTimeout(() => {
      if (!text) return root(catalogView(""));
      const top = stack[stack.length - 1];
      show(searchView(text), !!(top && top.search));
      stack[stack.length - 1].search = true;
    }, 250);
  });
  await go(catalogView(""));
}

start();
