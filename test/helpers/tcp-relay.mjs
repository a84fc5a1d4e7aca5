// QEMU's guestfwd=...-cmd: runs this once per guest connection, with the connection on stdin and
// stdout; it relays to 127.0.0.1:PORT, or to the unix socket at PATH (a chardev guestfwd would
// carry one connection only).
import net from 'node:net';

const to = process.argv[2];
const socket = /^\d+$/.test(to) ? net.connect(Number(to), '127.0.0.1') : net.connect(to);
process.stdin.pipe(socket).pipe(process.stdout);
socket.on('error', () => process.exit(1));
socket.on('close', () => process.exit(0));
