// A small Node.js HTTP server that speaks trailers, for tests/integration/test_trailers.py.
//   node tests/support/trailers_backend.js   -> prints "trailers backend listening on PORT"
// GET  /        answers chunked "hello" with `Trailer: X-Checksum, Grpc-Status` and both
//               trailer fields (Node's res.addTrailers).
// POST /echo    reads the (chunked) body and answers JSON: the body's length and the
//               request's trailer fields as Node parsed them (req.trailers).
"use strict";
const http = require("http");

const server = http.createServer((req, res) => {
  if (req.method === "POST") {
    let length = 0;
    req.on("data", (chunk) => { length += chunk.length; });
    req.on("end", () => {
      const body = JSON.stringify({ length, trailers: req.trailers });
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": body.length });
      res.end(body);
    });
    return;
  }
  res.writeHead(200, { "Content-Type": "text/plain", "Trailer": "X-Checksum, Grpc-Status" });
  res.write("hel");
  res.write("lo");
  res.addTrailers({ "X-Checksum": "5d41402a", "Grpc-Status": "0" });
  res.end();
});
server.keepAliveTimeout = 30000;
server.listen(0, "127.0.0.1", () => {
  console.log(`trailers backend listening on ${server.address().port}`);
});
process.on("SIGTERM", () => process.exit(0));
