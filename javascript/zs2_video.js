// ZS² Video in the page: hover hints on the accordion's controls, and the MP4/WebM player under
// the txt2img results (gradio's gallery shows the GIF/WebP; it cannot play video files). The
// extension names the files it wrote in the run's comments, which A1111 shows in html_log.
(function () {
    "use strict";

    var VIDEO_LINE = /ZS² Video: (.+?\.(?:mp4|webm))(?=\s|$)/g;

    function applyHints() {
        gradioApp().querySelectorAll(".zs2-hints").forEach(function (holder) {
            var hints = JSON.parse(holder.dataset.hints || "{}");
            Object.keys(hints).forEach(function (id) {
                var element = gradioApp().getElementById(id);
                if (!element) {
                    return;
                }
                element.title = hints[id];
                element.querySelectorAll("label, span").forEach(function (label) {
                    label.title = hints[id];
                });
            });
        });
    }

    function videoPaths(element) {
        var text = element.innerText || element.textContent;
        var paths = [];
        var match;
        VIDEO_LINE.lastIndex = 0;
        while ((match = VIDEO_LINE.exec(text)) !== null) {
            paths.push(match[1]);
        }
        return paths;
    }

    function showVideos() {
        var log = gradioApp().getElementById("html_log_txt2img");
        var gallery = gradioApp().getElementById("txt2img_gallery");
        if (!log || !gallery) {
            return;
        }
        var paths = videoPaths(log);
        var player = gradioApp().getElementById("zs2_video_player");
        var key = paths.join("|");
        if (player ? player.dataset.paths === key : !paths.length) {
            return;
        }
        if (!player) {
            player = document.createElement("div");
            player.id = "zs2_video_player";
            gallery.parentElement.insertBefore(player, gallery.nextSibling);
        }
        player.dataset.paths = key;
        player.innerHTML = "";
        paths.forEach(function (path) {
            var video = document.createElement("video");
            video.src = "file=" + encodeURI(path).replace(/#/g, "%23");
            video.controls = true;
            video.loop = true;
            video.muted = true;
            video.autoplay = true;
            video.style.maxWidth = "100%";
            video.title = path;
            player.appendChild(video);
        });
    }

    onUiLoaded(applyHints);
    onUiUpdate(function () {
        applyHints();
        showVideos();
    });
})();
