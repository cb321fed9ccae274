// Telegram's side of the page: what the client supports, haptics, links and popups.
export const tg = window.Telegram && window.Telegram.WebApp;
// Inside a Telegram client the MainButton is the primary action; in a plain browser (or a
// client that reports no platform) the page shows its own button instead.
export const native = !!(tg && tg.platform && tg.platform !== "unknown");
// What the client supports (telegram-web-app.js throws on a popup before 6.2 and has no
// BackButton before 6.1): older clients get the page's own back button and confirm().
const since = (version) => !!(tg && tg.isVersionAtLeast && tg.isVersionAtLeast(version));
export const nativeBack = native && since("6.1");
const popups = since("6.2");

export function haptic(kind) {
  if (tg && tg.HapticFeedback) tg.HapticFeedback.notificationOccurred(kind);
}

// The invoice inside Telegram (Crypto Bot's Mini App), else its bot link.
export function openInvoice(order) {
  const pay = order.pay || {};
  const link = pay.mini_app_invoice_url || pay.bot_invoice_url;
  if (!link) return;
  if (tg && tg.openTelegramLink && /^https:\/\/t\.me\//.test(link)) tg.openTelegramLink(link);
  else if (tg && tg.openLink) tg.openLink(link);
  else window.open(link, "_blank");
}

// A yes/no question: Telegram's popup where the client has one, else the browser's.
export function confirm(message, answer) {
  if (!popups) return answer(window.confirm(message));
  try {
    tg.showConfirm(message, answer);
  } catch (error) {
    // a popup already open (a second tap): that one answers
  }
}
