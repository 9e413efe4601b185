// tcp_proxy.js - a TCP port on 127.0.0.1 forwarded to a unix socket, for
// test_status.sh: killing it takes PostgreSQL away from one mount only.
//
//   node tcp_proxy.js PORT SOCKET_PATH
//
// Exits on SIGTERM, dropping every connection it carries.
"use strict";
const net = require("net");
const [port, path] = process.argv.slice(2);
const conns = new Set();

const server = net.createServer((c) => {
	const up = net.connect(path);
	conns.add(c);
	conns.add(up);
	c.pipe(up);
	up.pipe(c);
	const end = () => {
		c.destroy();
		up.destroy();
		conns.delete(c);
		conns.delete(up);
	};
	c.on("error", end);
	up.on("error", end);
	c.on("close", end);
	up.on("close", end);
});
server.listen(Number(port), "127.0.0.1");
process.on("SIGTERM", () => {
	for (const c of conns) c.destroy();
	process.exit(0);
});
