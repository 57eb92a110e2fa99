// The socket.io side of bench/realtime.sh: a socket.io server with the Redis adapter, as
// the seeds' Node users run it. Every socket joins the room "bench". POST /publish
// {channel, event, data} broadcasts through Redis with the Redis emitter, the way another
// process (an API, a worker) publishes to socket.io replicas, so an event travels the
// same path as on Switchyard: HTTP, Redis pub/sub, the server, the sockets.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";

const port = Number(process.env.PORT);
const prefix = process.env.PREFIX || "bench-socketio";
const pub = createClient({ url: process.env.REDIS_URL });
const sub = pub.duplicate();
const emitterClient = pub.duplicate();
await Promise.all([pub.connect(), sub.connect(), emitterClient.connect()]);
const emitter = new Emitter(emitterClient, { key: prefix });

const http = createServer((req, res) => {
  if (req.method === "POST" && req.url === "/publish") {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      const message = JSON.parse(body);
      emitter.to(message.channel).emit(message.event, message.data);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
    return;
  }
  res.writeHead(404).end();
});
const io = new Server(http, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
});
io.adapter(createAdapter(pub, sub, { key: prefix }));
io.on("connection", (socket) => socket.join("bench"));
http.listen(port, "127.0.0.1", () => console.log("ready"));
