// QEMU's guestfwd=...-cmd: runs this once per guest connection, with the connection on stdin and
// stdout; it relays to 127.0.0.1:PORT (a chardev guestfwd would carry one connection only).
import net from 'node:net';

const socket = net.connect(Number(process.argv[2]), '127.0.0.1');
process.stdin.pipe(socket).pipe(process.stdout);
socket.on('error', () => process.exit(1));
socket.on('close', () => process.exit(0));
