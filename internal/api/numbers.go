package api

import (
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
)

// PhoneNumbersAPIVersions are the phone numbers api-versions telgw accepts (the npm SDK 1.5.0
// sends 2025-06-01; the older stable versions share the shapes telgw serves).
var PhoneNumbersAPIVersions = []string{"2021-03-07", "2022-12-01", "2025-02-11", "2025-04-01", "2025-06-01"}

type numbersHandlers struct {
	s   *Server
	svc *numbers.Service
}

// MountNumbers serves the ACS phone numbers API (PhoneNumbers 2025-06-01) and the operator's
// inventory routes:
//
//	POST   /telgw/numbers:import          text/csv file, or JSON {"range":"+1…:+1…", "carrier", …}
//	GET    /telgw/numbers[?state&areaCode&skip&top]
//	GET    /telgw/numbers/{phoneNumber}
//	DELETE /telgw/numbers/{phoneNumber}   withdraw an unsold number → 204
//	PUT    /telgw/numbers/{phoneNumber}/route  {"route":"sip:…"|"user:8:acs:…"|"bot:https://…"|""}
//	PUT    /telgw/numbers/{phoneNumber}/assignment  {"communicationUser":"8:acs:…"} → the number
//	DELETE /telgw/numbers/{phoneNumber}/assignment  → 204
//	GET    /telgw/users/{communicationUser}/number  → {"phoneNumber":"+1…"}
func (s *Server) MountNumbers(svc *numbers.Service) {
	h := &numbersHandlers{s: s, svc: svc}
	s.authed.Group(func(r chi.Router) {
		r.Use(APIVersions(PhoneNumbersAPIVersions...))
		r.Get("/availablePhoneNumbers/countries", h.countries)
		r.Get("/availablePhoneNumbers/countries/{countryCode}/areaCodes", h.areaCodes)
		r.Get("/availablePhoneNumbers/countries/{countryCode}/localities", h.localities)
		r.Get("/availablePhoneNumbers/countries/{countryCode}/offerings", h.offerings)
		r.Post("/availablePhoneNumbers/countries/{countryCode}/:search", h.search)
		r.Post("/availablePhoneNumbers/countries/{countryCode}/:browse", h.browse)
		r.Get("/availablePhoneNumbers/searchResults/{searchId}", h.searchResult)
		r.Post("/availablePhoneNumbers/:purchase", h.purchase)
		r.Get("/availablePhoneNumbers/reservations", h.reservations)
		r.Get("/availablePhoneNumbers/reservations/{reservationId}", h.reservation)
		r.Patch("/availablePhoneNumbers/reservations/{reservationId}", h.reservationUpsert)
		r.Delete("/availablePhoneNumbers/reservations/{reservationId}", h.reservationDelete)
		r.Post("/availablePhoneNumbers/reservations/{reservationId}/:purchase", h.reservationPurchase)
		r.Get("/phoneNumbers", h.purchasedList)
		r.Get("/phoneNumbers/operations/{operationId}", h.operation)
		r.Delete("/phoneNumbers/operations/{operationId}", h.operationCancel)
		r.Get("/phoneNumbers/{phoneNumber}", h.purchasedGet)
		r.Delete("/phoneNumbers/{phoneNumber}", h.release)
		r.Patch("/phoneNumbers/{phoneNumber}/capabilities", h.capabilities)
		r.Post("/operatorInformation/:search", h.operatorInfo)
	})
	s.authed.Post("/telgw/numbers:import", h.opImport)
	s.authed.Get("/telgw/numbers", h.opList)
	s.authed.Get("/telgw/numbers/{phoneNumber}", h.opGet)
	s.authed.Delete("/telgw/numbers/{phoneNumber}", h.opWithdraw)
	s.authed.Put("/telgw/numbers/{phoneNumber}/route", h.opRoute)
	s.authed.Put("/telgw/numbers/{phoneNumber}/assignment", h.opAssign)
	s.authed.Delete("/telgw/numbers/{phoneNumber}/assignment", h.opUnassign)
	s.authed.Get("/telgw/users/{communicationUser}/number", h.opUserNumber)
}

// fail writes err; messages of bad-input errors name their field (SDKs show only the message).
func (h *numbersHandlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	if pe, ok := problem.As(err); ok && pe.Target != "" && pe.Kind != problem.KindInternal && !strings.Contains(pe.Message, pe.Target) {
		c := *pe
		c.Message = pe.Target + ": " + pe.Message
		err = &c
	}
	WriteError(w, r, h.s.log, err)
}

// Wire shapes (phonenumbers.json definitions).

type capsJSON struct {
	Calling string `json:"calling"`
	SMS     string `json:"sms"`
}

type costJSON struct {
	Amount           float64 `json:"amount"`
	CurrencyCode     string  `json:"currencyCode"`
	BillingFrequency string  `json:"billingFrequency"`
}

func cost(usd float64) costJSON {
	return costJSON{Amount: usd, CurrencyCode: "USD", BillingFrequency: "monthly"}
}

func capsOf(c numbers.Capabilities) capsJSON {
	return capsJSON{Calling: string(c.Calling), SMS: string(c.SMS)}
}

type purchasedJSON struct {
	ID              string    `json:"id"`
	PhoneNumber     string    `json:"phoneNumber"`
	CountryCode     string    `json:"countryCode"`
	PhoneNumberType string    `json:"phoneNumberType"`
	Capabilities    capsJSON  `json:"capabilities"`
	AssignmentType  string    `json:"assignmentType"`
	PurchaseDate    time.Time `json:"purchaseDate"`
	Cost            costJSON  `json:"cost"`
}

func purchased(n numbers.Number) purchasedJSON {
	p := purchasedJSON{ID: n.E164.ID(), PhoneNumber: string(n.E164), CountryCode: numbers.Country, PhoneNumberType: string(n.Type),
		Capabilities: capsOf(n.Caps), AssignmentType: string(n.Assignment), Cost: cost(n.MonthlyUSD)}
	if n.Purchased != nil {
		p.PurchaseDate = *n.Purchased
	}
	return p
}

type availableJSON struct {
	ID                             string         `json:"id"`
	CountryCode                    string         `json:"countryCode"`
	PhoneNumber                    string         `json:"phoneNumber"`
	Capabilities                   capsJSON       `json:"capabilities"`
	PhoneNumberType                string         `json:"phoneNumberType"`
	AssignmentType                 string         `json:"assignmentType"`
	Cost                           costJSON       `json:"cost"`
	Status                         string         `json:"status"`
	IsAgreementToNotResellRequired bool           `json:"isAgreementToNotResellRequired"`
	Error                          *errorCodeJSON `json:"error,omitempty"`
}

type errorCodeJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type operationJSON struct {
	OperationType      string       `json:"operationType"`
	Status             string       `json:"status"`
	ResourceLocation   string       `json:"resourceLocation,omitempty"`
	CreatedDateTime    time.Time    `json:"createdDateTime"`
	Error              *ErrorDetail `json:"error,omitempty"`
	ID                 string       `json:"id"`
	LastActionDateTime time.Time    `json:"lastActionDateTime"`
}

// resourceLocation is the path of an operation's result.
func resourceLocation(op numbers.Operation) string {
	if op.Status != numbers.OpSucceeded || op.Resource == "" {
		return ""
	}
	switch op.Type {
	case numbers.OpSearch:
		return "/availablePhoneNumbers/searchResults/" + op.Resource
	case numbers.OpCapabilities:
		return phoneNumberPath(numbers.E164(op.Resource))
	}
	return ""
}

func phoneNumberPath(e numbers.E164) string { return "/phoneNumbers/" + url.PathEscape(string(e)) }

func operationPath(id string) string { return "/phoneNumbers/operations/" + id }

func (h *numbersHandlers) accepted(w http.ResponseWriter, r *http.Request, op numbers.Operation, idHeader, id string, location string, body any) {
	a := Accepted{OperationLocation: operationPath(op.ID), OperationID: op.ID, Body: body, Location: location,
		Headers: map[string]string{idHeader: id}}
	if r.URL.Query().Get("api-version") != "" {
		a.OperationLocation += "?api-version=" + url.QueryEscape(r.URL.Query().Get("api-version"))
	}
	WriteAccepted(w, a)
}

func (h *numbersHandlers) countries(w http.ResponseWriter, r *http.Request) {
	if _, err := PageParams(r, "maxPageSize", 100, 1000); err != nil {
		h.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"countries": []map[string]string{{"localizedName": "United States", "countryCode": numbers.Country}}})
}

type areaCodeJSON struct {
	AreaCode string `json:"areaCode"`
}

func (h *numbersHandlers) areaCodes(w http.ResponseWriter, r *http.Request) {
	p, err := PageParams(r, "maxPageSize", 100, 1000)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	if q.Get("phoneNumberType") == "" {
		h.fail(w, r, problem.Invalid("phoneNumberType", "is required").WithCode("InvalidPhoneNumberType"))
		return
	}
	codes, err := h.svc.AreaCodes(r.Context(), PathParam(r, "countryCode"), q.Get("phoneNumberType"), q.Get("assignmentType"),
		q.Get("locality"), q.Get("administrativeDivision"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, more := window(codes, p)
	out := make([]areaCodeJSON, 0, len(page))
	for _, c := range page {
		out = append(out, areaCodeJSON{c})
	}
	writePage(w, r, "areaCodes", out, NextLink(r, p, more))
}

// window slices one page out of a fully computed list.
func window[T any](all []T, p Page) ([]T, bool) {
	if p.Skip >= len(all) {
		return nil, false
	}
	end := min(len(all), p.Skip+p.Top)
	return all[p.Skip:end], end < len(all)
}

func writePage(w http.ResponseWriter, _ *http.Request, item string, items any, next string) {
	body := map[string]any{item: items}
	if next != "" {
		body["nextLink"] = next
	}
	WriteJSON(w, http.StatusOK, body)
}

type adminDivisionJSON struct {
	LocalizedName   string `json:"localizedName"`
	AbbreviatedName string `json:"abbreviatedName"`
}

type localityJSON struct {
	LocalizedName          string            `json:"localizedName"`
	AdministrativeDivision adminDivisionJSON `json:"administrativeDivision"`
}

func (h *numbersHandlers) localities(w http.ResponseWriter, r *http.Request) {
	p, err := PageParams(r, "maxPageSize", 100, 1000)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	locs, err := h.svc.Localities(r.Context(), PathParam(r, "countryCode"), q.Get("phoneNumberType"), q.Get("administrativeDivision"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, more := window(locs, p)
	out := make([]localityJSON, 0, len(page))
	for _, l := range page {
		out = append(out, localityJSON{LocalizedName: l.Name, AdministrativeDivision: adminDivisionJSON{numbers.StateName(l.State), l.State}})
	}
	writePage(w, r, "phoneNumberLocalities", out, NextLink(r, p, more))
}

type offeringJSON struct {
	PhoneNumberType       string   `json:"phoneNumberType"`
	AssignmentType        string   `json:"assignmentType"`
	AvailableCapabilities capsJSON `json:"availableCapabilities"`
	Cost                  costJSON `json:"cost"`
}

func (h *numbersHandlers) offerings(w http.ResponseWriter, r *http.Request) {
	p, err := PageParams(r, "maxPageSize", 100, 1000)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	offs, err := h.svc.Offerings(r.Context(), PathParam(r, "countryCode"), q.Get("phoneNumberType"), q.Get("assignmentType"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, more := window(offs, p)
	out := make([]offeringJSON, 0, len(page))
	for _, o := range page {
		out = append(out, offeringJSON{PhoneNumberType: string(o.Type), AssignmentType: string(o.Assignment),
			AvailableCapabilities: capsJSON{string(numbers.CapBoth), string(numbers.CapBoth)}, Cost: cost(o.MonthlyUSD)})
	}
	writePage(w, r, "phoneNumberOfferings", out, NextLink(r, p, more))
}

type searchRequestJSON struct {
	PhoneNumberType string    `json:"phoneNumberType"`
	AssignmentType  string    `json:"assignmentType"`
	Capabilities    *capsJSON `json:"capabilities"`
	AreaCode        string    `json:"areaCode"`
	Quantity        *int      `json:"quantity"`
}

type searchResultJSON struct {
	SearchID                       string    `json:"searchId"`
	PhoneNumbers                   []string  `json:"phoneNumbers"`
	PhoneNumberType                string    `json:"phoneNumberType"`
	AssignmentType                 string    `json:"assignmentType"`
	Capabilities                   capsJSON  `json:"capabilities"`
	Cost                           costJSON  `json:"cost"`
	SearchExpiresBy                time.Time `json:"searchExpiresBy"`
	IsAgreementToNotResellRequired bool      `json:"isAgreementToNotResellRequired"`
}

func searchResult(s numbers.Search) searchResultJSON {
	out := searchResultJSON{SearchID: s.ID, PhoneNumbers: make([]string, 0, len(s.Numbers)), PhoneNumberType: string(s.Type),
		AssignmentType: string(s.Assignment), Capabilities: capsOf(s.Caps), Cost: cost(s.MonthlyUSD), SearchExpiresBy: s.ExpiresAt}
	for _, e := range s.Numbers {
		out.PhoneNumbers = append(out.PhoneNumbers, string(e))
	}
	return out
}

func (h *numbersHandlers) search(w http.ResponseWriter, r *http.Request) {
	var req searchRequestJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.PhoneNumberType == "" {
		h.fail(w, r, problem.Invalid("phoneNumberType", "is required").WithCode("InvalidPhoneNumberType"))
		return
	}
	if req.AssignmentType == "" {
		h.fail(w, r, problem.Invalid("assignmentType", "is required").WithCode("InvalidAssignmentType"))
		return
	}
	if req.Capabilities == nil {
		h.fail(w, r, problem.Invalid("capabilities", "is required").WithCode("InvalidCapabilities"))
		return
	}
	se, op, err := h.svc.Search(r.Context(), numbers.SearchRequest{CountryCode: PathParam(r, "countryCode"), Type: req.PhoneNumberType,
		Assignment: req.AssignmentType, Calling: req.Capabilities.Calling, SMS: req.Capabilities.SMS, AreaCode: req.AreaCode, Quantity: req.Quantity})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	id := strings.TrimPrefix(op.ID, numbers.OpSearch.Prefix())
	if op.Status != numbers.OpSucceeded {
		h.accepted(w, r, op, "search-id", id, "", nil)
		return
	}
	h.accepted(w, r, op, "search-id", se.ID, "/availablePhoneNumbers/searchResults/"+se.ID, searchResult(se))
}

func (h *numbersHandlers) searchResult(w http.ResponseWriter, r *http.Request) {
	se, err := h.svc.SearchResult(r.Context(), PathParam(r, "searchId"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, searchResult(se))
}

func (h *numbersHandlers) purchase(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SearchID         string `json:"searchId"`
		AgreeToNotResell *bool  `json:"agreeToNotResell"`
	}
	if err := DecodeJSON(r, &req, false); err != nil {
		h.fail(w, r, err)
		return
	}
	op, err := h.svc.Purchase(r.Context(), req.SearchID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.accepted(w, r, op, "purchase-id", strings.TrimPrefix(op.ID, numbers.OpPurchase.Prefix()), "", nil)
}

func (h *numbersHandlers) operation(w http.ResponseWriter, r *http.Request) {
	op, err := h.svc.Operation(r.Context(), PathParam(r, "operationId"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := operationJSON{OperationType: string(op.Type), Status: op.Status, ResourceLocation: resourceLocation(op),
		CreatedDateTime: op.CreatedAt, ID: op.ID, LastActionDateTime: op.UpdatedAt}
	if op.Status == numbers.OpFailed {
		out.Error = &ErrorDetail{Code: op.ErrCode, Message: op.ErrMsg}
	}
	if out.ResourceLocation != "" {
		w.Header().Set("Location", out.ResourceLocation)
	}
	WriteJSON(w, http.StatusOK, out)
}

func (h *numbersHandlers) operationCancel(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.CancelOperation(r.Context(), PathParam(r, "operationId")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *numbersHandlers) purchasedList(w http.ResponseWriter, r *http.Request) {
	p, err := PageParams(r, "top", 100, 1000)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ns, err := h.svc.PurchasedList(r.Context(), p.Skip, p.Top+1)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	more := len(ns) > p.Top
	out := make([]purchasedJSON, 0, min(len(ns), p.Top))
	for _, n := range ns[:min(len(ns), p.Top)] {
		out = append(out, purchased(n))
	}
	writePage(w, r, "phoneNumbers", out, NextLink(r, p, more))
}

func (h *numbersHandlers) purchasedGet(w http.ResponseWriter, r *http.Request) {
	n, err := h.svc.Purchased(r.Context(), PathParam(r, "phoneNumber"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, purchased(n))
}

func (h *numbersHandlers) release(w http.ResponseWriter, r *http.Request) {
	op, err := h.svc.Release(r.Context(), PathParam(r, "phoneNumber"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.accepted(w, r, op, "release-id", strings.TrimPrefix(op.ID, numbers.OpRelease.Prefix()), "", nil)
}

func (h *numbersHandlers) capabilities(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Calling string `json:"calling"`
		SMS     string `json:"sms"`
	}
	if err := DecodeJSON(r, &req, false); err != nil {
		h.fail(w, r, err)
		return
	}
	n, op, err := h.svc.UpdateCapabilities(r.Context(), PathParam(r, "phoneNumber"), req.Calling, req.SMS)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.accepted(w, r, op, "capabilities-id", strings.TrimPrefix(op.ID, numbers.OpCapabilities.Prefix()), phoneNumberPath(n.E164), purchased(n))
}

func (h *numbersHandlers) operatorInfo(w http.ResponseWriter, r *http.Request) {
	var req struct {
		PhoneNumbers []string `json:"phoneNumbers"`
		Options      *struct {
			IncludeAdditionalOperatorDetails bool `json:"includeAdditionalOperatorDetails"`
		} `json:"options"`
	}
	if err := DecodeJSON(r, &req, false); err != nil {
		h.fail(w, r, err)
		return
	}
	infos, err := h.svc.OperatorInformation(r.Context(), req.PhoneNumbers)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	details := req.Options != nil && req.Options.IncludeAdditionalOperatorDetails
	values := make([]map[string]any, 0, len(infos))
	for _, in := range infos {
		v := map[string]any{"phoneNumber": string(in.E164), "nationalFormat": in.National, "internationalFormat": in.International}
		if details {
			v["isoCountryCode"] = numbers.Country
			v["numberType"] = "geographic"
			if in.Type == numbers.TypeTollFree {
				v["numberType"] = "other"
			}
			if in.Known && in.Carrier != "" {
				v["operatorDetails"] = map[string]string{"name": in.Carrier}
			}
		}
		values = append(values, v)
	}
	WriteJSON(w, http.StatusOK, map[string]any{"values": values})
}

// isCSV reports whether the request body is a CSV file.
func isCSV(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "text/csv" || mt == "text/plain" || mt == "application/csv"
}

// Assignment to communication users (operator).

// opAssign gives a purchased number to a communication user and answers the number as
// GET /telgw/numbers/{phoneNumber} shows it (route "user:8:acs:…", assignmentType person).
func (h *numbersHandlers) opAssign(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CommunicationUser *string `json:"communicationUser"`
	}
	if err := DecodeJSON(r, &req, false); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.CommunicationUser == nil || *req.CommunicationUser == "" {
		h.fail(w, r, problem.Invalid("communicationUser", "is required (a communication user id, 8:acs:…)").WithCode("InvalidCommunicationUser"))
		return
	}
	number := PathParam(r, "phoneNumber")
	if err := h.svc.AssignUser(r.Context(), number, *req.CommunicationUser); err != nil {
		h.fail(w, r, err)
		return
	}
	n, err := h.svc.Get(r.Context(), number)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, inventory(n, time.Now()))
}

// opUnassign takes a number back from its user (no-op when it is not assigned to one).
func (h *numbersHandlers) opUnassign(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.UnassignUser(r.Context(), PathParam(r, "phoneNumber")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// opUserNumber answers the number assigned to a communication user: its caller ID.
func (h *numbersHandlers) opUserNumber(w http.ResponseWriter, r *http.Request) {
	e, err := h.svc.UserNumber(r.Context(), PathParam(r, "communicationUser"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"phoneNumber": e})
}
