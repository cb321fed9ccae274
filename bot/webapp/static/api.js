// The storefront's JSON API: every call carries Telegram's initData (Authorization: tma …).
const tg = window.Telegram && window.Telegram.WebApp;

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path, body) {
  const options = {
    method: body === undefined ? "GET" : "POST",
    headers: { Authorization: "tma " + ((tg && tg.initData) || "") },
  };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch("api/" + path, options);
  } catch (e) {
    throw new ApiError(0, "");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (e) {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.error) || "");
  }
  return data;
}
