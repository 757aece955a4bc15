package numbers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/telgw/telgw/internal/problem"
)

// Number assignment: an operator gives a purchased number to an ACS communication user
// (assignmentType person). The number's route becomes that user, so its inbound calls ring the
// user's WebRTC client, and the number becomes the user's caller ID on the calls it places.

// UserIDPrefix starts every ACS communication user raw id.
const UserIDPrefix = "8:acs:"

// ParseUserID checks that id looks like an ACS communication user raw id,
// "8:acs:<resourceId>_<uuid>" (the form internal/identity mints and ACS returns), and reports
// a KindInvalid problem naming target otherwise. Whether the user exists is a separate
// question (Config.UserExists).
func ParseUserID(target, id string) (string, error) {
	bad := func(why string) (string, error) {
		return "", problem.Invalid(target, "%q is not a communication user id (8:acs:<resourceId>_<uuid>): %s", id, why).
			WithCode("InvalidCommunicationUser")
	}
	rest, ok := strings.CutPrefix(id, UserIDPrefix)
	if !ok {
		return bad("it does not start with 8:acs:")
	}
	i := strings.LastIndexByte(rest, '_')
	if i <= 0 {
		return bad("it has no <resourceId>_ part")
	}
	res, guid := rest[:i], rest[i+1:]
	if strings.ContainsFunc(res, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return bad("its resource id has a space or control character")
	}
	if len(guid) != 36 {
		return bad("it does not end in a uuid")
	}
	if _, err := uuid.Parse(guid); err != nil {
		return bad("it does not end in a uuid")
	}
	return id, nil
}

// AssignUser gives a purchased number to a communication user: the number's route becomes
// the user (its calls ring the user's client) and its assignmentType becomes person. A number
// already assigned to someone else moves to user; any SIP or bot route is replaced. Errors:
// KindInvalid (phoneNumber, communicationUser), KindNotFound when the number is not in the
// inventory or (with Config.UserExists) the user does not exist, KindConflict when the number
// is not purchased.
func (s *Service) AssignUser(ctx context.Context, number, user string) error {
	e, err := ParseField("phoneNumber", number)
	if err != nil {
		return err
	}
	if _, err := ParseUserID("communicationUser", user); err != nil {
		return err
	}
	r, err := UserRoute(user)
	if err != nil {
		return err
	}
	if s.cfg.UserExists != nil {
		ok, err := s.cfg.UserExists(ctx, user)
		if err != nil {
			return fmt.Errorf("assign %s: look up user: %w", e, err)
		}
		if !ok {
			return problem.NotFound("communicationUser", "communication user %q does not exist", user).WithCode("IdentityNotFound")
		}
	}
	if err := s.SetRoute(ctx, string(e), r); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "number assigned", "number", string(e), "user", user)
	return nil
}

// UnassignUser takes a purchased number back from the communication user it is assigned to:
// its route returns to the default. A number routed elsewhere (SIP, bot) or to nobody is left
// as it is, so repeating the call is harmless. Errors as SetRoute.
func (s *Service) UnassignUser(ctx context.Context, number string) error {
	n, err := s.Get(ctx, number)
	if err != nil {
		return err
	}
	if n.Status != StatePurchased {
		return problem.Conflict("phoneNumber", "%s is not purchased; only purchased numbers are assigned", n.E164).WithCode("PhoneNumberNotPurchased")
	}
	if n.Route.Kind() != RouteUser {
		return nil
	}
	if err := s.SetRoute(ctx, string(n.E164), Route{}); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "number unassigned", "number", string(n.E164), "user", n.Route.Target())
	return nil
}

// UserNumber is the E.164 text of the purchased number assigned to a communication user (the
// lowest when several are): the caller ID of the calls the user places. KindNotFound (communicationUser) when the
// user has no number, KindInvalid when user is not a communication user id.
func (s *Service) UserNumber(ctx context.Context, user string) (string, error) {
	if _, err := ParseUserID("communicationUser", user); err != nil {
		return "", err
	}
	e, err := s.store.NumberForUser(ctx, user)
	if errors.Is(err, problem.ErrNotFound) {
		return "", problem.NotFound("communicationUser", "no purchased number is assigned to %s", user).WithCode("PhoneNumberNotFound")
	}
	if err != nil {
		return "", fmt.Errorf("number of %s: %w", user, err)
	}
	return string(e), nil
}
