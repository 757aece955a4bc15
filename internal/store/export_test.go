package store

// The statements the plan tests (plan_test.go) explain.
var (
	ClaimSQL       = claimSQL
	MessagesMovePG = messagesMovePG
)
