// ZS² Video in the page: hover hints on the accordion's controls, and the MP4/WebM player under
// the txt2img results (gradio's gallery shows the GIF/WebP; it cannot play video files). The
// extension lists the videos it wrote under "zs2_videos" in the run's info JSON, which A1111 keeps
// in the hidden generation_info_txt2img element.
(function () {
    "use strict";

    var INFO_KEY = "zs2_videos";
    var PLAYED = {mp4: true, webm: true};

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

    function videoPaths(info) {
        var entries;
        try {
            entries = JSON.parse(info.value || "{}")[INFO_KEY] || [];
        } catch (error) {
            return [];
        }
        return entries.filter(function (entry) {
            return entry.path && PLAYED[entry.format];
        }).map(function (entry) {
            return entry.path;
        });
    }

    function showVideos() {
        var info = gradioApp().querySelector("#generation_info_txt2img textarea");
        var gallery = gradioApp().getElementById("txt2img_gallery");
        if (!info || !gallery) {
            return;
        }
        var paths = videoPaths(info);
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
