"""TLS: termination on listeners (certificates by SNI), SNI passthrough on TCP listeners,
TLS to backends. Python's `ssl` is OpenSSL: handshakes and record encryption run in the
same C code as in HAProxy and nginx; what is Python here is the choosing (which certificate,
which pool) and the counting. See docs/tls.md."""
