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
//	sender    ──▶ one per carrier: claims due queued messages in batches (oldest first, one per
//	              destination at a time; FOR UPDATE SKIP LOCKED on PostgreSQL, so nodes share the
//	              queue), checks opt-outs, submits the whole batch at once (GSM-7/UCS-2,
//	              concatenation, windowed SMPP), commits the outcomes together:
//	          ──▶ sent (parts recorded for receipt matching) | held back for a retry (throttled,
//	              queue full, timeout, no bind; doubling backoff) | failed (carrier refusal,
//	              validity over, opted out)
//	receipts  ──▶ matched in batches (shared transaction) ──▶ per-part final states
//	          ──▶ delivered | failed, SMSDeliveryReportReceived
//	inbound   ──▶ reassembled ──▶ STOP/START/HELP handling ──▶ SMSReceived (shared transaction)
//
// Durability: a 202 is sent once the messages are committed. A message is submitted only
// while its batch holds an in-flight token (Config.InFlight: sms.inFlight, by default the
// carriers' total window) and the token is returned once its outcome is committed, so a kill
// -9 sends at most that many messages twice. River runs only the receipt timeouts (and webhook
// deliveries).
//
// Throughput (bench/sms has the figures): a batch keeps its tokens until its slowest answer
// and its outcome commit, so with many recipients per request the senders run at about
// InFlight ÷ (submit round of a batch + outcome commit); with one recipient per request the
// accepts (HTTP, the shared commits) set the pace.
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
