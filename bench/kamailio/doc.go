// Package kamailio is the reference side of telgw's SIP load benchmarks (issue 5): it runs
// Kamailio (Debian) as a transaction-stateful proxy routing a set of numbers to one callee,
// with rtpengine (Debian, userspace forwarding) anchoring the media, and it drives SIPp load
// through any SIP target given by address. The same functions measure telgw and the
// reference, so both are reported side by side from one harness:
//
//   - [SignallingRamp] runs SIPp caller → target → SIPp callee at increasing call rates and
//     reports failed calls and setup-latency percentiles per step; [MaxCPS] picks the highest
//     rate that had no failure.
//   - [Media] holds N calls with G.711 RTP streamed by the harness in both directions through
//     the target and reports packet loss per direction.
//
// The benchmark itself is a test guarded by TELGW_BENCH=1 (see bench_test.go), so plain
// `go test ./...` never runs it:
//
//	TELGW_BENCH=1 go test ./bench/kamailio -run TestReference -v -timeout 60m
//
// Peers: apt-get install -y sip-tester kamailio rtpengine-daemon.
package kamailio
