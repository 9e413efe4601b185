// ws_events.js - a small client of vsync-mount's GET /events (WebSocket),
// for test_status.sh. Needs Node.js >= 20 run with --experimental-websocket
// (its built-in WebSocket client; no package to install).
//
//   node --experimental-websocket ws_events.js URL COUNT IDLE_MS [OPENED]
//
// Prints each message (one JSON event) on its own line and exits 0 after
// COUNT messages, or once IDLE_MS pass without one (0: wait for COUNT).
// OPENED, if given, is created once the connection is open. Exits 1 if
// the connection fails or closes first, 2 on a message that is not JSON.
"use strict";
const fs = require("fs");
const [url, countArg, idleArg, opened] = process.argv.slice(2);
const count = Number(countArg);
const idle = Number(idleArg);
let seen = 0;
let timer = null;

function arm() {
	if (idle > 0) {
		clearTimeout(timer);
		timer = setTimeout(() => process.exit(0), idle);
	}
}

const ws = new WebSocket(url);
ws.onopen = () => {
	if (opened) fs.writeFileSync(opened, "");
	arm();
};
ws.onmessage = (m) => {
	try {
		JSON.parse(m.data);
	} catch (e) {
		console.error("not JSON: " + m.data);
		process.exit(2);
	}
	console.log(m.data);
	seen++;
	if (seen >= count) process.exit(0);
	arm();
};
ws.onerror = () => {
	console.error("websocket error");
	process.exit(1);
};
ws.onclose = () => process.exit(seen >= count ? 0 : 1);
