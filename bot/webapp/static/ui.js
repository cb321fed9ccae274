// Small DOM helpers: every text goes in as text, never as HTML.
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function photo(product, size, large) {
  if (product.photo) {
    return h("img", {
      class: "photo",
      src: product.photo[size],
      alt: "",
      loading: "lazy",
      decoding: "async",
    });
  }
  const initial = (product.title || "?").trim().charAt(0).toUpperCase();
  return h("div", { class: "placeholder" + (large ? " large" : ""), "aria-hidden": "true" }, initial);
}

let toastTimer = null;
export function toast(text) {
  const node = document.getElementById("toast");
  if (!text) return;
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (node.hidden = true), 3500);
}
