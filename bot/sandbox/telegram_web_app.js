// A local stand-in for https://telegram.org/js/telegram-web-app.js (tests and `make demo`).
//
// Like the real script it builds window.Telegram.WebApp from the URL hash that Telegram's
// clients append to a Mini App's URL:
//   #tgWebAppData=<urlencoded initData>&tgWebAppThemeParams=<urlencoded JSON>&tgWebAppVersion=8.0
// and sets the --tg-theme-* CSS variables. Buttons, haptics and links do nothing but are
// recorded in window.TelegramStub.calls; when the page is framed they are also posted to the
// parent window as {source: "telegram-web-app-stub", method, args}.
(function () {
  "use strict";

  var calls = [];
  var handlers = {};

  function record(method, args) {
    var list = Array.prototype.slice.call(args || []).filter(function (a) {
      return typeof a !== "function";
    });
    calls.push({ method: method, args: list });
    if (window.parent && window.parent !== window) {
      try {
        window.parent.postMessage({ source: "telegram-web-app-stub", method: method, args: list }, "*");
      } catch (e) {
        /* an argument that cannot be cloned: the local record is enough */
      }
    }
  }

  function emit(eventType, data) {
    (handlers[eventType] || []).slice().forEach(function (cb) {
      try {
        cb.call(WebApp, data);
      } catch (e) {
        console.error(e);
      }
    });
  }

  function hashParams() {
    var params = {};
    var hash = window.location.hash.replace(/^#/, "");
    hash.split("&").forEach(function (pair) {
      if (!pair) return;
      var at = pair.indexOf("=");
      var key = decodeURIComponent(at < 0 ? pair : pair.slice(0, at));
      var value = at < 0 ? "" : decodeURIComponent(pair.slice(at + 1).replace(/\+/g, "%20"));
      params[key] = value;
    });
    return params;
  }

  function parseInitData(initData) {
    var unsafe = {};
    if (!initData) return unsafe;
    initData.split("&").forEach(function (pair) {
      var at = pair.indexOf("=");
      if (at < 0) return;
      var key = decodeURIComponent(pair.slice(0, at));
      var value = decodeURIComponent(pair.slice(at + 1).replace(/\+/g, "%20"));
      if (key === "user" || key === "receiver" || key === "chat") {
        try {
          value = JSON.parse(value);
        } catch (e) {
          /* leave it as text, as the real script does */
        }
      } else if (key === "auth_date") {
        value = parseInt(value, 10);
      }
      unsafe[key] = value;
    });
    return unsafe;
  }

  function isDark(color) {
    var m = /^#([0-9a-f]{6})$/i.exec(color || "");
    if (!m) return false;
    var n = parseInt(m[1], 16);
    var r = (n >> 16) & 255,
      g = (n >> 8) & 255,
      b = n & 255;
    return Math.sqrt(0.299 * r * r + 0.587 * g * g + 0.114 * b * b) < 120;
  }

  var params = hashParams();
  // The real script keeps the launch parameters for reloads of the same session.
  try {
    if (params.tgWebAppData) {
      sessionStorage.setItem("__telegram_stub__params", JSON.stringify(params));
    } else {
      params = JSON.parse(sessionStorage.getItem("__telegram_stub__params") || "{}");
    }
  } catch (e) {
    /* storage may be unavailable */
  }
  var themeParams = {};
  try {
    themeParams = JSON.parse(params.tgWebAppThemeParams || "{}") || {};
  } catch (e) {
    themeParams = {};
  }

  function applyTheme() {
    var style = document.documentElement.style;
    Object.keys(themeParams).forEach(function (key) {
      style.setProperty("--tg-theme-" + key.replace(/_/g, "-"), themeParams[key]);
    });
    WebApp.colorScheme = isDark(themeParams.bg_color) ? "dark" : "light";
    style.setProperty("--tg-color-scheme", WebApp.colorScheme);
    style.setProperty("--tg-viewport-height", window.innerHeight + "px");
    style.setProperty("--tg-viewport-stable-height", window.innerHeight + "px");
  }

  function button(name, extra) {
    var clicks = [];
    var b = {
      isVisible: false,
      onClick: function (cb) {
        record(name + ".onClick", []);
        clicks.push(cb);
        return b;
      },
      offClick: function (cb) {
        record(name + ".offClick", []);
        var at = clicks.indexOf(cb);
        if (at >= 0) clicks.splice(at, 1);
        return b;
      },
      show: function () {
        record(name + ".show", []);
        b.isVisible = true;
        return b;
      },
      hide: function () {
        record(name + ".hide", []);
        b.isVisible = false;
        return b;
      },
      _click: function () {
        clicks.slice().forEach(function (cb) {
          cb();
        });
        emit(name === "BackButton" ? "backButtonClicked" : "mainButtonClicked");
      },
    };
    Object.keys(extra || {}).forEach(function (key) {
      b[key] = extra[key];
    });
    return b;
  }

  var MainButton = button("MainButton", {
    text: "CONTINUE",
    color: themeParams.button_color || "#2481cc",
    textColor: themeParams.button_text_color || "#ffffff",
    isActive: true,
    isProgressVisible: false,
  });
  MainButton.setText = function (text) {
    record("MainButton.setText", [text]);
    MainButton.text = String(text);
    return MainButton;
  };
  MainButton.setParams = function (p) {
    record("MainButton.setParams", [p]);
    if (p.text !== undefined) MainButton.text = String(p.text);
    if (p.color !== undefined) MainButton.color = p.color;
    if (p.text_color !== undefined) MainButton.textColor = p.text_color;
    if (p.is_visible !== undefined) MainButton.isVisible = !!p.is_visible;
    if (p.is_active !== undefined) MainButton.isActive = !!p.is_active;
    return MainButton;
  };
  MainButton.enable = function () {
    record("MainButton.enable", []);
    MainButton.isActive = true;
    return MainButton;
  };
  MainButton.disable = function () {
    record("MainButton.disable", []);
    MainButton.isActive = false;
    return MainButton;
  };
  MainButton.showProgress = function () {
    record("MainButton.showProgress", []);
    MainButton.isProgressVisible = true;
    return MainButton;
  };
  MainButton.hideProgress = function () {
    record("MainButton.hideProgress", []);
    MainButton.isProgressVisible = false;
    return MainButton;
  };

  var BackButton = button("BackButton");

  function haptic(name) {
    return function () {
      record("HapticFeedback." + name, arguments);
      return WebApp.HapticFeedback;
    };
  }

  var WebApp = {
    initData: params.tgWebAppData || "",
    initDataUnsafe: parseInitData(params.tgWebAppData || ""),
    version: params.tgWebAppVersion || "6.0",
    platform: params.tgWebAppPlatform || "unknown",
    colorScheme: "light",
    themeParams: themeParams,
    isExpanded: false,
    viewportHeight: window.innerHeight,
    viewportStableHeight: window.innerHeight,
    headerColor: themeParams.bg_color || "#ffffff",
    backgroundColor: themeParams.bg_color || "#ffffff",
    MainButton: MainButton,
    BackButton: BackButton,
    HapticFeedback: {
      impactOccurred: haptic("impactOccurred"),
      notificationOccurred: haptic("notificationOccurred"),
      selectionChanged: haptic("selectionChanged"),
    },
    isVersionAtLeast: function (v) {
      var a = String(WebApp.version).split("."),
        b = String(v).split(".");
      for (var i = 0; i < Math.max(a.length, b.length); i++) {
        var x = parseInt(a[i] || "0", 10),
          y = parseInt(b[i] || "0", 10);
        if (x !== y) return x > y;
      }
      return true;
    },
    ready: function () {
      record("ready", arguments);
    },
    expand: function () {
      record("expand", arguments);
      WebApp.isExpanded = true;
    },
    close: function () {
      record("close", arguments);
    },
    setHeaderColor: function () {
      record("setHeaderColor", arguments);
    },
    setBackgroundColor: function () {
      record("setBackgroundColor", arguments);
    },
    enableClosingConfirmation: function () {
      record("enableClosingConfirmation", arguments);
    },
    disableClosingConfirmation: function () {
      record("disableClosingConfirmation", arguments);
    },
    onEvent: function (eventType, cb) {
      record("onEvent", [eventType]);
      (handlers[eventType] = handlers[eventType] || []).push(cb);
    },
    offEvent: function (eventType, cb) {
      record("offEvent", [eventType]);
      var list = handlers[eventType] || [];
      var at = list.indexOf(cb);
      if (at >= 0) list.splice(at, 1);
    },
    sendData: function () {
      record("sendData", arguments);
    },
    openLink: function () {
      record("openLink", arguments);
    },
    openTelegramLink: function () {
      record("openTelegramLink", arguments);
    },
    openInvoice: function (url, cb) {
      record("openInvoice", arguments);
      if (cb) setTimeout(cb, 0, "pending");
    },
    showPopup: function (p, cb) {
      record("showPopup", arguments);
      if (cb) setTimeout(cb, 0, null);
    },
    showAlert: function (message, cb) {
      record("showAlert", arguments);
      if (cb) setTimeout(cb, 0);
    },
    showConfirm: function (message, cb) {
      record("showConfirm", arguments);
      if (cb) setTimeout(cb, 0, window.TelegramStub.confirmAnswer);
    },
  };

  window.Telegram = window.Telegram || {};
  window.Telegram.WebApp = WebApp;
  // Test controls: what was called, and the hands of a user pressing Telegram's own buttons.
  window.TelegramStub = {
    calls: calls,
    confirmAnswer: true,
    callsOf: function (method) {
      return calls.filter(function (c) {
        return c.method === method;
      });
    },
    clickMainButton: function () {
      MainButton._click();
    },
    clickBackButton: function () {
      BackButton._click();
    },
    setTheme: function (params) {
      themeParams = params || {};
      WebApp.themeParams = themeParams;
      applyTheme();
      emit("themeChanged");
    },
  };

  // A host page playing Telegram (make demo) presses Telegram's own buttons by posting
  // {source: "telegram-web-app-host", button: "MainButton" | "BackButton", event: "click"}.
  window.addEventListener("message", function (event) {
    var data = event.data || {};
    if (event.source !== window.parent || data.source !== "telegram-web-app-host") return;
    if (data.event !== "click") return;
    if (data.button === "BackButton") BackButton._click();
    else if (data.button === "MainButton") MainButton._click();
  });

  if (document.documentElement) {
    applyTheme();
  } else {
    document.addEventListener("DOMContentLoaded", applyTheme);
  }
})();
