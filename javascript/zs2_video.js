// ZS² Video in the page: hover hints on the accordion's controls, and a video panel above the
// txt2img and img2img results: each video labelled and played at a readable size, links to its
// files through the webui's file= route, why it is shorter than asked, and buttons to send it to
// img2img's ZS² video input and to open the output folder. The extension lists the videos it
// wrote under "zs2_videos" (and a report per video under "zs2_report") in the run's info JSON,
// which A1111 keeps in the hidden generation_info_<tab> element.
(function () {
    "use strict";

    var INFO_KEY = "zs2_videos";
    var REPORT_KEY = "zs2_report";
    var TABS = ["txt2img", "img2img"];
    var PLAYED = {mp4: true, webm: true};
    var SHOWN = {gif: true, webp: true};
    var ORDER = ["mp4", "webm", "gif", "webp"];

    function applyHints() {
        gradioApp().querySelectorAll(".zs2-hints").forEach(function (holder) {
            var hints = JSON.parse(holder.dataset.hints || "{}");
            Object.keys(hints).forEach(function (id) {
                var element = gradioApp().getElementById(id);
                if (!element || element.title === hints[id]) {
                    return;
                }
                element.title = hints[id];
                element.querySelectorAll("label, span").forEach(function (label) {
                    label.title = hints[id];
                });
            });
        });
    }

    function fileUrl(path) {
        return "file=" + encodeURI(path).replace(/#/g, "%23").replace(/\?/g, "%3F");
    }

    function readInfo(tab) {
        var info = gradioApp().querySelector("#generation_info_" + tab + " textarea");
        if (!info || !info.value) {
            return null;
        }
        try {
            return JSON.parse(info.value);
        } catch (error) {
            return null;
        }
    }

    // The run's videos, each with its files by format and its report entry.
    function videosOf(info) {
        var byVideo = {};
        (info[INFO_KEY] || []).forEach(function (entry) {
            if (!entry.path) {
                return;
            }
            var video = byVideo[entry.video] = byVideo[entry.video] || {video: entry.video, seed: entry.seed, files: {}};
            video.files[entry.format] = entry;
        });
        (info[REPORT_KEY] || []).forEach(function (report) {
            if (byVideo[report.video]) {
                byVideo[report.video].report = report;
            }
        });
        return Object.keys(byVideo).map(function (key) {
            return byVideo[key];
        });
    }

    function element(tag, props, text) {
        var made = document.createElement(tag);
        Object.keys(props || {}).forEach(function (key) {
            made[key] = props[key];
        });
        if (text) {
            made.textContent = text;
        }
        return made;
    }

    function heading(video) {
        var report = video.report || {};
        var text = "ZS² Video: video " + video.video + " · seed " + video.seed;
        if (report.frames !== undefined) {
            text += " · " + report.frames + " frames at " + report.fps + " fps";
            if (report.interpolate > 1) {
                text += " · interpolated ×" + report.interpolate + " to " + report.fps * report.interpolate + " fps";
            }
        }
        return text;
    }

    function sendToImg2img(path) {
        var box = gradioApp().querySelector("#script_img2img_zs2_video_video textarea");
        if (!box) {
            return;
        }
        switch_to_img2img();
        var accordion = gradioApp().getElementById("script_img2img_zs2_video_enabled");
        if (accordion && accordion.visibleCheckbox && !accordion.visibleCheckbox.checked) {
            inputAccordionChecked(accordion.id, true);
        }
        box.value = path;
        updateInput(box);
    }

    function videoBlock(tab, video) {
        var block = element("div", {className: "zs2-video"});
        var title = heading(video);
        block.appendChild(element("h3", {}, title));
        var report = video.report || {};
        if (report.reason) {
            block.appendChild(element("p", {className: "zs2-note"},
                "Shorter than asked: " + report.frames + " of " + report.requested + " frames. " + report.reason));
        }
        var played = ORDER.filter(function (fmt) {
            return PLAYED[fmt] && video.files[fmt];
        })[0];
        var still = ORDER.filter(function (fmt) {
            return SHOWN[fmt] && video.files[fmt];
        })[0];
        if (played) {
            block.appendChild(element("video", {
                src: fileUrl(video.files[played].path), controls: true, loop: true, muted: true, autoplay: true,
                title: title, className: "zs2-player"
            }));
        } else if (still) {
            block.appendChild(element("img", {src: fileUrl(video.files[still].path), alt: title, className: "zs2-player"}));
        }
        var actions = element("div", {className: "zs2-actions"});
        ORDER.forEach(function (fmt) {
            var entry = video.files[fmt];
            if (entry) {
                actions.appendChild(element("a", {
                    href: fileUrl(entry.path), download: entry.name || "", target: "_blank",
                    className: "zs2-download", title: entry.name || ""
                }, "Download " + fmt.toUpperCase()));
            }
        });
        var sendable = video.files.mp4 || video.files.webm || video.files.gif || video.files.webp;
        if (sendable && gradioApp().querySelector("#script_img2img_zs2_video_video textarea")) {
            var send = element("button", {className: "zs2-send", type: "button"}, "Send video to img2img");
            send.addEventListener("click", function () {
                sendToImg2img(sendable.path);
            });
            actions.appendChild(send);
        }
        var folder = gradioApp().getElementById("script_" + tab + "_zs2_video_open_folder");
        if (folder) {
            var open = element("button", {className: "zs2-open-folder", type: "button"}, "Open folder");
            open.addEventListener("click", function () {
                folder.click();
            });
            actions.appendChild(open);
        }
        block.appendChild(actions);
        return block;
    }

    function showVideos(tab) {
        var gallery = gradioApp().getElementById(tab + "_gallery_container") ||
            gradioApp().getElementById(tab + "_gallery");
        var info = readInfo(tab);
        if (!gallery) {
            return;
        }
        var videos = info ? videosOf(info) : [];
        var panel = gradioApp().getElementById(tab + "_zs2_video_panel");
        var key = JSON.stringify([info && info[INFO_KEY], info && info[REPORT_KEY]]);
        if (panel ? panel.dataset.key === key : !videos.length) {
            return;
        }
        if (!panel) {
            panel = element("div", {id: tab + "_zs2_video_panel", className: "zs2-video-panel"});
            gallery.parentElement.insertBefore(panel, gallery);
        }
        panel.dataset.key = key;
        panel.innerHTML = "";
        videos.forEach(function (video) {
            panel.appendChild(videoBlock(tab, video));
        });
    }

    onUiLoaded(applyHints);
    onUiUpdate(function () {
        applyHints();
        TABS.forEach(showVideos);
    });
})();
