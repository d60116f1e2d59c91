// Runs in <head>, after config.js and before the body is drawn: what the first paint must
// already show (an untrained model's banner, a page that cannot classify, a camera button)
// is decided here as classes on <html>, so nothing appears later and pushes the page down.
(() => {
  const config = window.APP_CONFIG;
  const root = document.documentElement.classList;
  if (!config || !config.apiUrl) root.add("is-unavailable");
  else if (config.modelWeights === "random") root.add("is-untrained");
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) root.add("has-camera-api");
})();
