#!/usr/bin/env node
// watch.js - a Node fs.watch watcher for vsync's integration tests: what a
// dev server (Vite, webpack, next) sees of a directory.
//
// usage: node watch.js [--read] DIR...
//
// Watches each DIR with fs.watch (not recursive: Node's recursive mode on
// Linux is a JavaScript tree walk, not what the dev servers use). Prints
// "ready" once every watcher is set up, then one line per event:
//
//   <epoch ms, 3 decimals> TAB <dir> TAB <change|rename> TAB <name> TAB <what>
//
// With --read, <what> is what a reader reacting to the event sees at once
// (read synchronously inside the handler, as a watcher-driven dev server
// does): "file <size> <sha256>", "dir", "symlink <target>", "ENOENT" or
// "error <code>". Without --read it is "-".
//
// Watcher errors (a watched directory removed) are printed as
// "<ms> TAB <dir> TAB error TAB - TAB <code>" and the others keep going.
// Output is written synchronously, so a line is in the file when the event
// has been handled. Exits on SIGTERM/SIGINT.
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { performance } = require('perf_hooks');

const args = process.argv.slice(2);
let read = false;
if (args[0] === '--read') {
	read = true;
	args.shift();
}
if (args.length === 0) {
	process.stderr.write('usage: node watch.js [--read] DIR...\n');
	process.exit(2);
}

const now = () => (performance.timeOrigin + performance.now()).toFixed(3);

function out(line) {
	fs.writeSync(1, line + '\n');
}

function what(file) {
	if (!read) return '-';
	let st;
	try {
		st = fs.lstatSync(file);
	} catch (e) {
		return e.code === 'ENOENT' ? 'ENOENT' : 'error ' + e.code;
	}
	try {
		if (st.isDirectory()) return 'dir';
		if (st.isSymbolicLink()) return 'symlink ' + fs.readlinkSync(file);
		const buf = fs.readFileSync(file);
		const sha = crypto.createHash('sha256').update(buf).digest('hex');
		return 'file ' + buf.length + ' ' + sha;
	} catch (e) {
		return e.code === 'ENOENT' ? 'ENOENT' : 'error ' + e.code;
	}
}

const watchers = [];
for (const dir of args) {
	try {
		const w = fs.watch(dir, { persistent: true }, (type, name) => {
			const t = now();
			const n = name === null || name === undefined ? '' : String(name);
			out(`${t}\t${dir}\t${type}\t${n}\t${n ? what(path.join(dir, n)) : '-'}`);
		});
		w.on('error', (e) => out(`${now()}\t${dir}\terror\t-\t${e.code || e.message}`));
		watchers.push(w);
	} catch (e) {
		process.stderr.write(`watch.js: cannot watch ${dir}: ${e.message}\n`);
		process.exit(1);
	}
}
out('ready');

const stop = () => {
	for (const w of watchers) w.close();
	process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
