// A stand-in of Telegram's telegram-web-app.js for tests and the demo: window.Telegram.WebApp
// reads tgWebAppData and tgWebAppThemeParams from the URL hash, and every call is posted to
// window.parent as {source: "telegram-web-app-stub", method, args}.
(function () {
  "use strict";
  var hash = new URLSearchParams(window.location.hash.slice(1));
  var initData = hash.get("tgWebAppData") || "";
  var theme = {};
  try { theme = JSON.parse(hash.get("tgWebAppThemeParams") || "{}"); } catch (e) { theme = {}; }
  var unsafe = {};
  new URLSearchParams(initData).forEach(function (value, key) {
    try { unsafe[key] = key === "user" ? JSON.parse(value) : value; } catch (e) { unsafe[key] = value; }
  });
  var handlers = {};
  function post(method, args) {
    try {
      window.parent.postMessage({ source: "telegram-web-app-stub", method: method, args: args }, "*");
    } catch (e) { /* no parent */ }
  }
  function call(method) {
    return function () { post(method, Array.prototype.slice.call(arguments)); };
  }
  function button(name) {
    var self = { text: "", isVisible: false, isActive: true, _clicks: [] };
    self.setText = function (text) { self.text = text; post(name + ".setText", [text]); return self; };
    self.show = function () { self.isVisible = true; post(name + ".show", []); return self; };
    self.hide = function () { self.isVisible = false; post(name + ".hide", []); return self; };
    self.enable = function () { self.isActive = true; post(name + ".enable", []); return self; };
    self.disable = function () { self.isActive = false; post(name + ".disable", []); return self; };
    self.setParams = function (p) { post(name + ".setParams", [p]); return self; };
    self.showProgress = function () { post(name + ".showProgress", []); return self; };
    self.hideProgress = function () { post(name + ".hideProgress", []); return self; };
    self.onClick = function (cb) { self._clicks.push(cb); post(name + ".onClick", []); return self; };
    self.offClick = function (cb) {
      self._clicks = self._clicks.filter(function (c) { return c !== cb; }); return self;
    };
    return self;
  }
  var webApp = {
    initData: initData,
    initDataUnsafe: unsafe,
    version: "8.0",
    platform: "web",
    colorScheme: theme.bg_color && parseInt(theme.bg_color.slice(1, 3), 16) < 128 ? "dark" : "light",
    themeParams: theme,
    isExpanded: true,
    viewportHeight: window.innerHeight,
    viewportStableHeight: window.innerHeight,
    MainButton: button("MainButton"),
    BackButton: button("BackButton"),
    HapticFeedback: {
      impactOccurred: call("HapticFeedback.impactOccurred"),
      notificationOccurred: call("HapticFeedback.notificationOccurred"),
      selectionChanged: call("HapticFeedback.selectionChanged"),
    },
    ready: call("ready"),
    expand: call("expand"),
    close: call("close"),
    openLink: call("openLink"),
    openTelegramLink: call("openTelegramLink"),
    openInvoice: call("openInvoice"),
    showAlert: function (message, cb) { post("showAlert", [message]); if (cb) { cb(); } },
    showConfirm: function (message, cb) { post("showConfirm", [message]); if (cb) { cb(true); } },
    setHeaderColor: call("setHeaderColor"),
    setBackgroundColor: call("setBackgroundColor"),
    onEvent: function (name, cb) { (handlers[name] = handlers[name] || []).push(cb); },
    offEvent: function (name, cb) {
      handlers[name] = (handlers[name] || []).filter(function (c) { return c !== cb; });
    },
  };
  // The page around the panel plays Telegram's own buttons: it posts clicks back here.
  window.addEventListener("message", function (event) {
    var data = event.data || {};
    if (data.source !== "telegram-web-app-host") { return; }
    var target = data.button === "BackButton" ? webApp.BackButton : webApp.MainButton;
    if (data.event === "click") { target._clicks.forEach(function (cb) { cb(); }); }
  });
  window.Telegram = { WebApp: webApp };
})();
