// Package sms is telgw's SMS domain: the outbound queue (messages, per-recipient results,
// repeatability), delivery reports, inbound routing and opt-out keywords. It knows nothing of
// HTTP, SMPP or SQL: carriers (internal/sms/smpp, internal/sms/httpcarrier) implement
// Carrier, internal/store implements Store, and the REST edge (internal/api/sms.go) calls
// Service.
//
// A message's life:
//
//	POST /sms ──▶ Send: rows (status queued), stored with those of concurrent requests
//	              (committer: one Store.MessagesAccept, one fsync, for all that arrived
//	              meanwhile; on PostgreSQL a single INSERT, repeatability ids settled by its
//	              ON CONFLICT) ──▶ 202
//	sender    ──▶ one per carrier: claims due queued messages in batches ahead of need (oldest
//	              first, one per destination at a time) and leases them to this process in one
//	              committed statement (FOR UPDATE SKIP LOCKED on PostgreSQL, so nodes share the
//	              queue); checks opt-outs; submits each message as an in-flight token frees
//	              (GSM-7/UCS-2, concatenation, windowed SMPP); records each outcome as its answer
//	              arrives, with the others that arrived meanwhile, in one commit:
//	          ──▶ sent (parts recorded for receipt matching) | held back for a retry (throttled,
//	              queue full, timeout, no bind; doubling backoff) | failed (carrier refusal,
//	              validity over, opted out)
//	receipts  ──▶ matched in batches (shared transaction) ──▶ per-part final states
//	          ──▶ delivered | failed, SMSDeliveryReportReceived
//	inbound   ──▶ reassembled ──▶ STOP/START/HELP handling ──▶ SMSReceived (shared transaction)
//
// Durability: a 202 is sent once the messages are committed. A message is submitted only
// while it holds an in-flight token (Config.InFlight: sms.inFlight, by default the carriers'
// total window) and the token is returned once its outcome is committed, so a kill -9 sends at
// most that many messages twice. River runs only the receipt timeouts (and webhook
// deliveries).
//
// Leases: a claimed message stays queued, leased to the claiming process ("<node name>#<id>")
// for leaseTTL (90 s), so it is not due for other claims and still holds its destination's
// later messages back (order per destination). Its outcome is written only while the lease is
// still the process's (a lease that expired and went to another sender is that sender's). A
// node killed with -9 leaves its leases; started again under the same name (cluster.nodeName)
// it ends them at once, otherwise they expire and any node claims the messages. SQLite serves
// one node, which ends every lease it finds at start.
//
// Throughput (bench/sms has the figures): tokens come back message by message, as each
// outcome commits, and are reused at once on messages claimed ahead, so the senders run at
// about InFlight ÷ (one submit + the wait for an outcome commit + the commit); with one
// recipient per request the accepts (HTTP, the shared commits) set the pace.
//
// Configuration (TELGW_CONFIG):
//
//	sms:
//	  inFlight: 0                     # submitted, outcome not yet recorded (0: the windows)
//	  carriers:
//	    - name: smsc1                 # numbers imported with carrier "smsc1" send here
//	      smpp: {address: 127.0.0.1:2775, systemId: telgw, password: secret,
//	             systemType: "", window: 10, maxRate: 0, links: 1, concat: udh8,
//	             bindMode: transceiver}
//	    - name: kannel
//	      http:
//	        url: "http://127.0.0.1:13013/cgi-bin/sendsms?username=u&password=p&from={fromDigits}&to={toDigits}&text={text}&dlr-mask={dlrMask}&dlr-url={dlrUrl}"
//	        callbackToken: a-long-random-token
//	webhooks:
//	  - url: http://127.0.0.1:9000/events
//	    secret: a-secret
//	    eventTypes: [Microsoft.Communication.SMSReceived]   # optional
//	    phoneNumbers: ["+14252000100"]                        # optional
package sms
