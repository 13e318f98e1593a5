"""Loopback load benchmarks: eucgate's SubmitCertificate against a bare grpcio echo baseline."""
