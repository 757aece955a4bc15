package api

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/problem"
)

// Call Automation's callRecording (CallRecording_* of the 2025-05-15 spec):
//
//	POST   /calling/recordings                      StartRecording → 200 RecordingStateResponse
//	GET    /calling/recordings/{recordingId}        GetRecordingProperties → 200
//	DELETE /calling/recordings/{recordingId}        StopRecording → 204
//	POST   /calling/recordings/{recordingId}:pause  PauseRecording → 202
//	POST   /calling/recordings/{recordingId}:resume ResumeRecording → 202
//
// and the recorded files at the locations RecordingFileStatusUpdated gives (the paths ACS's
// recording storage uses, served by telgw itself):
//
//	GET    /v1/objects/{documentId}/content/audio        the WAV or MP3 (Range requests: 206)
//	GET    /v1/objects/{documentId}/content/acsmetadata  the metadata document
//	DELETE /v1/objects/{documentId}                      deletes both → 200
//
// The file routes take the same HMAC signature as the API. The SDK signs them for its
// endpoint's host (sent as x-ms-host) while the request goes to the location's host, so the
// signed host is x-ms-host when present; the path is signed without a query, and the
// locations have none.

type recordingHandlers struct {
	s      *Server
	rec    *calls.Recordings
	repeat *repeatCache
	ops    *prometheus.CounterVec
}

// MountCallRecording serves call recording.
func (s *Server) MountCallRecording(rec *calls.Recordings) {
	h := &recordingHandlers{s: s, rec: rec, repeat: newRepeatCache(repeatWindow, 10000),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "telgw_callrecording_operations_total",
			Help: "Call recording operations by operation (start, state, stop, pause, resume, download, delete) and result (ok or the error class).",
		}, []string{"operation", "result"})}
	s.cfg.Registry.MustRegister(h.ops)
	s.authed.Group(func(r chi.Router) {
		r.Use(APIVersions(CallAutomationAPIVersions...))
		r.With(h.repeat.middleware).Post("/calling/recordings", h.count("start", h.start))
		r.Get("/calling/recordings/{recordingId}", h.count("state", h.state))
		r.Delete("/calling/recordings/{recordingId}", h.count("stop", h.stop))
		r.With(h.repeat.middleware).Post("/calling/recordings/{recordingAction}", h.count("action", h.action))
	})
	s.router.Group(func(r chi.Router) {
		r.Use(signedHost, s.authenticate)
		r.Get("/v1/objects/{documentId}/content/{part}", h.count("download", h.download))
		r.Head("/v1/objects/{documentId}/content/{part}", h.count("download", h.download))
		r.Delete("/v1/objects/{documentId}", h.count("delete", h.deleteFile))
	})
}

// count counts an operation by the status it answered.
func (h *recordingHandlers) count(op string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := op
		if op == "action" {
			switch _, act, _ := strings.Cut(PathParam(r, "recordingAction"), ":"); act {
			case "pause", "resume":
				name = act
			default:
				name = "other"
			}
		}
		sw := &statusWriter{ResponseWriter: w}
		next(sw, r)
		h.ops.WithLabelValues(name, resultOf(sw.status)).Inc()
	}
}

// signedHost makes x-ms-host the host the signature is checked against (the SDK's content
// downloader signs for its endpoint and sends the request to the file's location).
func signedHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("X-Ms-Host"); h != "" {
			r.Host = h
		}
		next.ServeHTTP(w, r)
	})
}

// startRecordingJSON is StartCallRecordingRequest (and what SDK 1.6.0 adds: callConnectionId,
// recordingStorage).
type startRecordingJSON struct {
	CallLocator *struct {
		ServerCallID string `json:"serverCallId"`
		GroupCallID  string `json:"groupCallId"`
		RoomID       string `json:"roomId"`
		Kind         string `json:"kind"`
	} `json:"callLocator"`
	CallConnectionID                string           `json:"callConnectionId"`
	RecordingStateCallbackURI       string           `json:"recordingStateCallbackUri"`
	RecordingContentType            string           `json:"recordingContentType"`
	RecordingChannelType            string           `json:"recordingChannelType"`
	RecordingFormatType             string           `json:"recordingFormatType"`
	AudioChannelParticipantOrdering []identifierJSON `json:"audioChannelParticipantOrdering"`
	ChannelAffinity                 []struct {
		Channel     *int            `json:"channel"`
		Participant *identifierJSON `json:"participant"`
	} `json:"channelAffinity"`
	PauseOnStart     bool         `json:"pauseOnStart"`
	ExternalStorage  *storageJSON `json:"externalStorage"`
	RecordingStorage *storageJSON `json:"recordingStorage"`
}

type storageJSON struct {
	RecordingStorageKind string `json:"recordingStorageKind"`
}

func (s *storageJSON) external() bool {
	return s != nil && s.RecordingStorageKind != "" && !strings.EqualFold(s.RecordingStorageKind, "azureCommunicationServices")
}

type recordingStateJSON struct {
	RecordingID    string `json:"recordingId"`
	RecordingState string `json:"recordingState"`
	RecordingKind  string `json:"recordingKind"`
}

func recordingStateOf(r calls.Recording) recordingStateJSON {
	return recordingStateJSON{RecordingID: r.ID, RecordingState: r.APIState(), RecordingKind: "azureCommunicationServices"}
}

func (h *recordingHandlers) start(w http.ResponseWriter, r *http.Request) {
	if err := h.startErr(w, r); err != nil {
		WriteError(w, r, h.s.log, err)
	}
}

func (h *recordingHandlers) startErr(w http.ResponseWriter, r *http.Request) error {
	var req startRecordingJSON
	if err := DecodeJSON(r, &req, false); err != nil {
		return err
	}
	if req.CallLocator == nil {
		return problem.Invalid("callLocator", "callLocator is required").WithCode("BadRequest")
	}
	p := calls.StartRecordingParams{ServerCallID: req.CallLocator.ServerCallID, GroupCallID: req.CallLocator.GroupCallID,
		RoomID: req.CallLocator.RoomID, ContentType: req.RecordingContentType, ChannelType: req.RecordingChannelType,
		FormatType: req.RecordingFormatType, PauseOnStart: req.PauseOnStart,
		ExternalStorage: req.ExternalStorage.external() || req.RecordingStorage.external()}
	if req.RecordingStateCallbackURI != "" {
		if err := checkCallbackURI(req.RecordingStateCallbackURI); err != nil {
			return problem.Invalid("recordingStateCallbackUri", "recordingStateCallbackUri must be an absolute http or https URL").WithCode("BadRequest")
		}
		p.CallbackURI = req.RecordingStateCallbackURI
	}
	for i := range req.AudioChannelParticipantOrdering {
		t, err := req.AudioChannelParticipantOrdering[i].participant("audioChannelParticipantOrdering")
		if err != nil {
			return err
		}
		p.Ordering = append(p.Ordering, t)
	}
	for _, a := range req.ChannelAffinity {
		t, err := a.Participant.participant("channelAffinity.participant")
		if err != nil {
			return err
		}
		if a.Channel == nil {
			return problem.Invalid("channelAffinity.channel", "channelAffinity.channel is required").WithCode("BadRequest")
		}
		p.Affinity = append(p.Affinity, calls.ChannelAffinity{Participant: t, Channel: *a.Channel})
	}
	rec, err := h.rec.Start(r.Context(), p)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, recordingStateOf(rec))
	return nil
}

func (h *recordingHandlers) state(w http.ResponseWriter, r *http.Request) {
	rec, err := h.rec.State(r.Context(), PathParam(r, "recordingId"))
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	WriteJSON(w, http.StatusOK, recordingStateOf(rec))
}

func (h *recordingHandlers) stop(w http.ResponseWriter, r *http.Request) {
	if err := h.rec.Stop(r.Context(), PathParam(r, "recordingId")); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *recordingHandlers) action(w http.ResponseWriter, r *http.Request) {
	id, act, _ := strings.Cut(PathParam(r, "recordingAction"), ":")
	var err error
	switch act {
	case "pause":
		err = h.rec.Pause(r.Context(), id)
	case "resume":
		err = h.rec.Resume(r.Context(), id)
	default:
		err = problem.NotFound("path", "no route for %s %s", r.Method, r.URL.Path).WithCode("NotFound")
	}
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// fileError answers a file request that failed: the ACS error body, plus the status and
// message the SDK's content downloader reads from a failed download or delete.
func (h *recordingHandlers) fileError(w http.ResponseWriter, r *http.Request, err error) {
	st := Status(err)
	if st >= 500 {
		h.s.log.Error("recording file request failed", "path", r.URL.Path, "err", err)
	}
	WriteJSON(w, st, struct {
		ErrorBody
		Status  int    `json:"status"`
		Message string `json:"message"`
	}{ErrorBody{Error: Detail(err)}, st, Detail(err).Message})
}

func (h *recordingHandlers) download(w http.ResponseWriter, r *http.Request) {
	rec, path, err := h.rec.Document(r.Context(), PathParam(r, "documentId"))
	if err != nil {
		h.fileError(w, r, err)
		return
	}
	switch PathParam(r, "part") {
	case "audio":
		f, err := os.Open(path)
		if err != nil {
			h.fileError(w, r, problem.NotFound("documentId", "the recording's file is gone").WithCode("NotFound"))
			return
		}
		defer f.Close()
		ext, ct := ".wav", "audio/wav"
		if filepath.Ext(rec.File) == ".mp3" {
			ext, ct = ".mp3", "audio/mpeg" // RFC 3003
		}
		w.Header().Set("Content-Type", ct)
		http.ServeContent(w, r, rec.DocumentID+ext, rec.EndedAt, f) // Range, If-Range (RFC 9110 §14)
	case "acsmetadata":
		w.Header().Set("Content-Type", "application/json")
		http.ServeContent(w, r, rec.DocumentID+".json", rec.EndedAt, bytes.NewReader([]byte(rec.Metadata)))
	default:
		h.fileError(w, r, problem.NotFound("path", "no route for %s %s", r.Method, r.URL.Path).WithCode("NotFound"))
	}
}

func (h *recordingHandlers) deleteFile(w http.ResponseWriter, r *http.Request) {
	if err := h.rec.DeleteDocument(r.Context(), PathParam(r, "documentId")); err != nil {
		h.fileError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK) // the SDK's delete expects 200
}
