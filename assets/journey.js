// The selfie step: camera capture where the browser allows it, and scaling large
// photos down before upload. Without this script the plain file input still works.
(function () {
  "use strict";
  var form = document.querySelector("form[data-selfie]");
  if (!form) return;
  var input = form.querySelector("input[name=photo]");
  var preview = document.getElementById("selfie-preview");
  var status = document.getElementById("selfie-status");
  var camera = document.getElementById("camera");
  var video = camera.querySelector("video");
  var start = document.getElementById("camera-start");
  var capture = document.getElementById("camera-capture");
  var MAX_SIDE = 800;
  var KEEP_AS_IS = 1024 * 1024;

  function show(blob, message) {
    preview.src = URL.createObjectURL(blob);
    preview.hidden = false;
    status.textContent = message;
  }

  function useBlob(blob, message) {
    var file = new File([blob], "selfie.jpg", { type: "image/jpeg" });
    var list = new DataTransfer();
    list.items.add(file);
    input.files = list.files;
    show(file, message);
  }

  function toJpeg(source, width, height) {
    var scale = Math.min(1, MAX_SIDE / Math.max(width, height));
    var canvas = document.createElement("canvas");
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    canvas.getContext("2d").drawImage(source, 0, 0, canvas.width, canvas.height);
    return new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", 0.85); });
  }

  input.addEventListener("change", function () {
    var file = input.files[0];
    if (!file) return;
    if (file.type === "image/jpeg" && file.size <= KEEP_AS_IS) {
      show(file, "Photo ready.");
      return;
    }
    createImageBitmap(file)
      .then(function (bitmap) { return toJpeg(bitmap, bitmap.width, bitmap.height); })
      .then(function (blob) { useBlob(blob, "Photo ready (resized)."); })
      .catch(function () {
        input.value = "";
        status.textContent = "That file is not a picture this page can read. Choose a JPEG photo.";
      });
  });

  if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.DataTransfer)) return;
  camera.hidden = false;
  start.addEventListener("click", function () {
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false })
      .then(function (stream) {
        video.srcObject = stream;
        video.hidden = false;
        return video.play();
      })
      .then(function () {
        capture.disabled = false;
        status.textContent = "Camera on. Look at the camera, then press Capture.";
        capture.focus();
      })
      .catch(function () {
        status.textContent = "The camera is not available here. Upload a photo instead.";
      });
  });
  capture.addEventListener("click", function () {
    toJpeg(video, video.videoWidth, video.videoHeight).then(function (blob) {
      useBlob(blob, "Selfie captured.");
      video.srcObject.getTracks().forEach(function (t) { t.stop(); });
      video.hidden = true;
      capture.disabled = true;
    });
  });
})();
