// Package sms is telgw's SMS domain: the outbound queue (messages, per-recipient results,
// repeatability), delivery reports, inbound routing and opt-out keywords. It knows nothing of
// HTTP, SMPP or SQL: carriers (internal/sms/smpp, internal/sms/httpcarrier) implement
// Carrier, internal/store implements Store, and the REST edge (internal/api/sms.go) calls
// Service.
//
// A message's life:
//
//	POST /sms ──▶ Send: rows (status queued) + one River send job, one transaction ──▶ 202
//	send job  ──▶ Carrier.Submit per message (GSM-7/UCS-2, concatenation, windowed SMPP)
//	          ──▶ sent (parts recorded for receipt matching) | retried later (throttled,
//	              queue full, timeout, no bind) | failed (carrier refusal, validity over)
//	receipts  ──▶ per-part final states ──▶ delivered | failed, SMSDeliveryReportReceived
//	inbound   ──▶ reassembled ──▶ STOP/START/HELP handling ──▶ SMSReceived
//
// Configuration (TELGW_CONFIG):
//
//	sms:
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
