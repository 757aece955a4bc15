package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/telgw/telgw/internal/app"
	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/keys"
)

func newTokensCmd(e *cliEnv) *cobra.Command {
	var (
		newUser bool
		scopes  []string
		minutes int
		asJSON  bool
	)
	issue := &cobra.Command{
		Use:   "issue [USER]",
		Short: "Issue a user access token (voip) for the softphone",
		Long: `Issue a user access token for an existing communication user (8:acs:…), or with --new for a new
one, and print it: paste it into the softphone at /phone/ or pass it to an ACS Calling SDK. The
token is signed with the node's current key, through the same identity service as
POST /identities/{id}/:issueAccessToken.`,
		Example: `  telgw tokens issue --new
  telgw tokens issue --new --json --expires-in 60
  telgw tokens issue 8:acs:res-1_00000000-0000-4000-8000-00000000000a`,
		Args: func(_ *cobra.Command, args []string) error {
			if newUser == (len(args) == 1) || len(args) > 1 {
				return usageError("want USER (8:acs:…) or --new")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			sc, err := identity.ParseScopes("--scope", scopes)
			if err != nil {
				return usageError(err.Error())
			}
			if len(sc) == 0 {
				return usageError("--scope: want at least one scope")
			}
			exp, err := identity.ParseExpiry(&minutes)
			if err != nil {
				return usageError("--expires-in: " + err.Error())
			}
			db, err := app.OpenStore(ctx, e.cfg)
			if err != nil {
				return err
			}
			defer db.Close()
			ring, err := keys.NewRing(ctx, db, e.cfg.AccessKey, e.cfg.Identity.ResourceID)
			if err != nil {
				return err
			}
			svc := identity.New(db, ring)
			var user string
			var tok identity.Token
			if newUser {
				id, t, err := svc.Create(ctx, sc, exp)
				if err != nil {
					return err
				}
				user, tok = id.ID, *t
			} else {
				user = args[0]
				if tok, err = svc.IssueToken(ctx, user, sc, exp); err != nil {
					return fmt.Errorf("user %s: %w", user, err)
				}
			}
			if asJSON {
				return printJSON(e.stdout, map[string]any{"identity": user, "token": tok.Token, "expiresOn": tok.ExpiresOn.Format(time.RFC3339)})
			}
			_, err = fmt.Fprintf(e.stdout, "user:    %s\nexpires: %s\ntoken:   %s\n", user, tok.ExpiresOn.Format(time.RFC3339), tok.Token)
			return err
		},
	}
	fl := issue.Flags()
	fl.BoolVar(&newUser, "new", false, "create a new communication user for the token")
	fl.StringSliceVar(&scopes, "scope", []string{"voip"}, "token scopes (voip, chat, …)")
	fl.IntVar(&minutes, "expires-in", 1440, "minutes until the token expires (60 to 1440)")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	_ = issue.RegisterFlagCompletionFunc("scope", cobra.FixedCompletions([]string{"voip", "chat", "chat.join", "chat.join.limited", "voip.join"}, cobra.ShellCompDirectiveNoFileComp))
	return group(&cobra.Command{Use: "tokens", Short: "User access tokens"}, issue)
}
