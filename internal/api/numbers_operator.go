package api

import (
	"net/http"
	"time"

	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
)

// Reservations, :browse and the operator's /telgw/numbers routes (see MountNumbers).

func available(n numbers.Number, status string) availableJSON {
	a := availableJSON{ID: n.E164.ID(), CountryCode: numbers.Country, PhoneNumber: string(n.E164), Capabilities: capsOf(n.Offered),
		PhoneNumberType: string(n.Type), AssignmentType: string(n.Assignment), Cost: cost(n.MonthlyUSD), Status: status}
	return a
}

type browseRequestJSON struct {
	PhoneNumberType     string    `json:"phoneNumberType"`
	Capabilities        *capsJSON `json:"capabilities"`
	AssignmentType      string    `json:"assignmentType"`
	PhoneNumberPrefixes []string  `json:"phoneNumberPrefixes"`
}

func (h *numbersHandlers) browse(w http.ResponseWriter, r *http.Request) {
	var req browseRequestJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.PhoneNumberType == "" {
		h.fail(w, r, problem.Invalid("phoneNumberType", "is required").WithCode("InvalidPhoneNumberType"))
		return
	}
	br := numbers.BrowseRequest{CountryCode: PathParam(r, "countryCode"), Type: req.PhoneNumberType, Assignment: req.AssignmentType,
		Prefixes: req.PhoneNumberPrefixes}
	if req.Capabilities != nil {
		br.Calling, br.SMS = req.Capabilities.Calling, req.Capabilities.SMS
	}
	ns, p, err := h.svc.Browse(r.Context(), br)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]availableJSON, 0, len(ns))
	for _, n := range ns {
		a := available(n, "available")
		a.Capabilities, a.AssignmentType = capsOf(p.Caps), string(p.Assignment)
		out = append(out, a)
	}
	WriteJSON(w, http.StatusOK, map[string]any{"phoneNumbers": out})
}

type reservationJSON struct {
	ID           string                    `json:"id"`
	ExpiresAt    time.Time                 `json:"expiresAt"`
	PhoneNumbers map[string]*availableJSON `json:"phoneNumbers,omitempty"`
	Status       string                    `json:"status"`
}

func reservation(res numbers.Reservation, withNumbers bool) reservationJSON {
	out := reservationJSON{ID: res.ID, ExpiresAt: res.ExpiresAt, Status: res.Status}
	if withNumbers {
		out.PhoneNumbers = map[string]*availableJSON{}
		for _, rn := range res.Numbers {
			a := available(rn.Number, rn.Status)
			a.Capabilities = capsOf(rn.Number.Caps)
			out.PhoneNumbers[rn.Number.E164.ID()] = &a
		}
	}
	return out
}

type reservationPatchJSON struct {
	PhoneNumbers map[string]*struct {
		CountryCode     string    `json:"countryCode"`
		Capabilities    *capsJSON `json:"capabilities"`
		PhoneNumberType string    `json:"phoneNumberType"`
		AssignmentType  string    `json:"assignmentType"`
	} `json:"phoneNumbers"`
}

func (h *numbersHandlers) reservationUpsert(w http.ResponseWriter, r *http.Request) {
	var req reservationPatchJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		h.fail(w, r, err)
		return
	}
	patch := make(map[string]*numbers.ReservationPatchNumber, len(req.PhoneNumbers))
	for id, v := range req.PhoneNumbers {
		if v == nil {
			patch[id] = nil
			continue
		}
		p := &numbers.ReservationPatchNumber{CountryCode: v.CountryCode, Type: v.PhoneNumberType, Assignment: v.AssignmentType}
		if v.Capabilities != nil {
			p.Calling, p.SMS = v.Capabilities.Calling, v.Capabilities.SMS
		}
		patch[id] = p
	}
	res, err := h.svc.UpsertReservation(r.Context(), PathParam(r, "reservationId"), patch)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := reservation(res.Reservation, true)
	for e, ferr := range res.Failed {
		a := availableJSON{ID: e.ID(), CountryCode: numbers.Country, PhoneNumber: string(e), PhoneNumberType: string(e.Type()),
			Status: "error", Error: &errorCodeJSON{Code: "FailedToReserveNumber", Message: "Failed to add the number to the reservation."}}
		if want := patch[e.ID()]; want != nil {
			a.Capabilities = capsJSON{Calling: want.Calling, SMS: want.SMS}
			a.AssignmentType = want.Assignment
		}
		if pe, ok := problem.As(ferr); ok {
			a.Error = &errorCodeJSON{Code: pe.Code, Message: pe.Message}
		}
		out.PhoneNumbers[e.ID()] = &a
	}
	status := http.StatusOK
	switch {
	case len(res.Failed) > 0:
		status = http.StatusMultiStatus
	case res.Created:
		status = http.StatusCreated
	}
	WriteJSON(w, status, out)
}

func (h *numbersHandlers) reservation(w http.ResponseWriter, r *http.Request) {
	res, err := h.svc.Reservation(r.Context(), PathParam(r, "reservationId"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, reservation(res, true))
}

func (h *numbersHandlers) reservations(w http.ResponseWriter, r *http.Request) {
	p, err := PageParams(r, "maxPageSize", 100, 1000)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	list, err := h.svc.Reservations(r.Context(), p.Skip, p.Top+1)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	more := len(list) > p.Top
	out := make([]reservationJSON, 0, len(list))
	for _, res := range list[:min(len(list), p.Top)] {
		out = append(out, reservation(res, false))
	}
	writePage(w, r, "reservations", out, NextLink(r, p, more))
}

func (h *numbersHandlers) reservationDelete(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.DeleteReservation(r.Context(), PathParam(r, "reservationId")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *numbersHandlers) reservationPurchase(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AgreeToNotResell *bool `json:"agreeToNotResell"`
	}
	if err := DecodeJSON(r, &req, true); err != nil {
		h.fail(w, r, err)
		return
	}
	id := PathParam(r, "reservationId")
	op, err := h.svc.PurchaseReservation(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.accepted(w, r, op, "reservation-purchase-id", id, "", nil)
}

// Operator routes.

type inventoryJSON struct {
	PhoneNumber            string     `json:"phoneNumber"`
	PhoneNumberType        string     `json:"phoneNumberType"`
	State                  string     `json:"state"`
	OfferedCapabilities    capsJSON   `json:"offeredCapabilities"`
	Locality               string     `json:"locality,omitempty"`
	AdministrativeDivision string     `json:"administrativeDivision,omitempty"`
	Carrier                string     `json:"carrier,omitempty"`
	MonthlyCost            float64    `json:"monthlyCost"`
	FreeAt                 *time.Time `json:"freeAt,omitempty"`
	HoldID                 string     `json:"holdId,omitempty"`
	AssignmentType         string     `json:"assignmentType,omitempty"`
	Capabilities           *capsJSON  `json:"capabilities,omitempty"`
	PurchaseDate           *time.Time `json:"purchaseDate,omitempty"`
	Route                  string     `json:"route,omitempty"`
}

func inventory(n numbers.Number, now time.Time) inventoryJSON {
	out := inventoryJSON{PhoneNumber: string(n.E164), PhoneNumberType: string(n.Type), State: string(n.EffectiveStatus(now)),
		OfferedCapabilities: capsOf(n.Offered), Locality: n.Locality, AdministrativeDivision: n.State, Carrier: n.Carrier,
		MonthlyCost: n.MonthlyUSD, PurchaseDate: n.Purchased, Route: n.Route.String()}
	if out.State != string(numbers.StateAvailable) {
		out.FreeAt, out.HoldID, out.AssignmentType = n.FreeAt, n.HoldID, string(n.Assignment)
		if n.Caps.Calling != "" {
			c := capsOf(n.Caps)
			out.Capabilities = &c
		}
	}
	return out
}

type importRangeJSON struct {
	Range                  string `json:"range"`
	PhoneNumberType        string `json:"phoneNumberType"`
	Calling                string `json:"calling"`
	SMS                    string `json:"sms"`
	Locality               string `json:"locality"`
	AdministrativeDivision string `json:"administrativeDivision"`
	Carrier                string `json:"carrier"`
	MonthlyCost            string `json:"monthlyCost"`
}

func (h *numbersHandlers) opImport(w http.ResponseWriter, r *http.Request) {
	var rep numbers.ImportReport
	var err error
	if isCSV(r) {
		rep, err = h.svc.ImportCSV(r.Context(), r.Body)
	} else {
		var req importRangeJSON
		if err := DecodeJSON(r, &req, false); err != nil {
			h.fail(w, r, err)
			return
		}
		if req.Range == "" {
			h.fail(w, r, problem.Invalid("range", "is required (or send a text/csv file)"))
			return
		}
		rep, err = h.svc.ImportRange(r.Context(), req.Range, numbers.ImportInput{Type: req.PhoneNumberType, Calling: req.Calling,
			SMS: req.SMS, Locality: req.Locality, State: req.AdministrativeDivision, Carrier: req.Carrier, MonthlyCost: req.MonthlyCost})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if rep.Errors == nil {
		rep.Errors = []numbers.RowError{}
	}
	WriteJSON(w, http.StatusOK, rep)
}

func (h *numbersHandlers) opList(w http.ResponseWriter, r *http.Request) {
	p, err := PageParams(r, "top", 100, 1000)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	ns, err := h.svc.List(r.Context(), numbers.ListParams{State: numbers.State(q.Get("state")), AreaCode: q.Get("areaCode"), Skip: p.Skip, Top: p.Top + 1})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	now := time.Now()
	out := make([]inventoryJSON, 0, len(ns))
	for _, n := range ns[:min(len(ns), p.Top)] {
		out = append(out, inventory(n, now))
	}
	writePage(w, r, "numbers", out, NextLink(r, p, len(ns) > p.Top))
}

func (h *numbersHandlers) opGet(w http.ResponseWriter, r *http.Request) {
	n, err := h.svc.Get(r.Context(), PathParam(r, "phoneNumber"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, inventory(n, time.Now()))
}

func (h *numbersHandlers) opWithdraw(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.Withdraw(r.Context(), PathParam(r, "phoneNumber")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *numbersHandlers) opRoute(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Route *string `json:"route"`
	}
	if err := DecodeJSON(r, &req, false); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.Route == nil {
		h.fail(w, r, problem.Invalid("route", "is required (\"\" clears it)"))
		return
	}
	rt, err := numbers.ParseRoute(*req.Route)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.svc.SetRoute(r.Context(), PathParam(r, "phoneNumber"), rt); err != nil {
		h.fail(w, r, err)
		return
	}
	n, err := h.svc.Get(r.Context(), PathParam(r, "phoneNumber"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, inventory(n, time.Now()))
}
