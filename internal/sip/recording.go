package sip

import (
	"fmt"
	"sync"
	"time"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/media/audio"
	"github.com/telgw/telgw/internal/media/mixer"
	"github.com/telgw/telgw/internal/media/record"
	"github.com/telgw/telgw/internal/media/rtpmedia"
	"github.com/telgw/telgw/internal/problem"
)

// Recording a bot call (calls.RecordingControl): each person's leg gets a tap, an
// rtpmedia.Receiver that relayParty hands a copy of every packet the person sends (one atomic
// load per packet when nobody records; a copy into the receiver's ring when someone does),
// and a goroutine per recording pulls a 20 ms frame from every tap on the wall clock's
// timeline, mixes them (mixer.MixPCM) or lays them on channels, and hands the tick to a
// record.Recorder, whose bounded queue never waits for the disk. Nothing here is on the relay
// path beyond that copy: a slow or failing disk drops or ends the recording, never a packet
// of the call. What telgw itself plays to the people (the app's prompts) is not in the file.

// recTap is a recording's receiver of one person's RTP.
type recTap struct {
	rx *rtpmedia.Receiver
}

// recParty is one person a recording has seen: their tap and channel (-1: none left on an
// unmixed file).
type recParty struct {
	pt  *party
	tap *recTap
	ch  int
	pcm []int16
}

// botRecording is one recording of a bot call.
type botRecording struct {
	b    *botCall
	rec  *record.Recorder
	spec calls.RecordingSpec

	stop  chan struct{}
	done  chan struct{} // the tick loop returned
	ended chan struct{} // the call's media is over
	once  sync.Once
	res   calls.RecordingResult

	// Owned by the tick loop until done.
	parties []*recParty
	chans   []calls.Participant // unmixed: who each channel is
	seen    []calls.Participant
	mix     mixer.Mixer
	in      []mixer.Input
	out     [][]int16
	frames  [][]int16
}

var _ calls.RecordingControl = (*botCall)(nil)

// createRecorder makes a recording's file; tests inject failing writers here.
var createRecorder = record.Create

// recordTick is the recording's frame: the Receivers' and the Recorder's 20 ms.
const recordTick = time.Duration(audio.FrameSamples) * time.Second / audio.Rate

// Record implements calls.RecordingControl.
func (b *botCall) Record(spec calls.RecordingSpec) (calls.RecordingHandle, error) {
	b.mu.Lock()
	over := b.closed
	b.mu.Unlock()
	if over {
		return nil, problem.NotFound("callLocator.serverCallId", "the call has ended").WithCode("NotFound")
	}
	channels := 1
	if spec.Unmixed {
		channels = spec.Channels
	}
	rec, err := createRecorder(spec.Path, record.Config{Channels: channels, OnFail: spec.OnFail})
	if err != nil {
		return nil, fmt.Errorf("recording file: %w", err)
	}
	if spec.Paused {
		rec.Pause()
	}
	r := &botRecording{b: b, rec: rec, spec: spec, stop: make(chan struct{}), done: make(chan struct{}), ended: make(chan struct{})}
	if spec.Unmixed {
		r.chans = make([]calls.Participant, channels)
		r.frames = make([][]int16, channels)
		for p, ch := range spec.Fixed {
			if ch < channels {
				r.chans[ch] = p
			}
		}
	}
	go r.run()
	return r, nil
}

func (r *botRecording) run() {
	defer close(r.done)
	t := time.NewTicker(recordTick)
	defer t.Stop()
	start := time.Now()
	var written int64
	r.attach()
	for {
		select {
		case <-r.stop:
			return
		case <-r.b.over:
			close(r.ended)
			return
		case <-t.C:
		}
		r.attach()
		// The file follows the wall clock: a tick that came late writes the frames due.
		for due := int64(time.Since(start) / recordTick); written < due; written++ {
			r.tick()
		}
	}
}

// attach gives the people who joined a tap (and a channel) and takes it from those who left.
func (r *botRecording) attach() {
	b := r.b
	b.mu.Lock()
	ps := b.parties
	now := make(map[*party]bool, len(ps))
	var joined []*party
	for _, pt := range ps {
		now[pt] = true
		if !r.has(pt) {
			joined = append(joined, pt)
		}
	}
	b.mu.Unlock()
	keep := r.parties[:0]
	for _, rp := range r.parties {
		if now[rp.pt] {
			keep = append(keep, rp)
		} else {
			rp.pt.tap.CompareAndSwap(rp.tap, nil)
		}
	}
	clear(r.parties[len(keep):])
	r.parties = keep
	for _, pt := range joined {
		rp := &recParty{pt: pt, ch: -1, pcm: make([]int16, 0, audio.FrameSamples),
			tap: &recTap{rx: rtpmedia.NewReceiver(rtpmedia.ReceiverConfig{Codecs: map[uint8]audio.Codec{0: audio.PCMU, 8: audio.PCMA}})}}
		if r.chans != nil {
			rp.ch = r.channel(pt.p)
		}
		r.parties = append(r.parties, rp)
		if !containsParticipant(r.seen, pt.p) {
			r.seen = append(r.seen, pt.p)
		}
		pt.tap.Store(rp.tap)
	}
}

func (r *botRecording) has(pt *party) bool {
	for _, rp := range r.parties {
		if rp.pt == pt {
			return true
		}
	}
	return false
}

// channel is p's channel of an unmixed file: the one fixed for it, the one it had before, or
// the first free one; -1 when every channel is taken.
func (r *botRecording) channel(p calls.Participant) int {
	for ch, q := range r.chans {
		if q == p {
			return ch
		}
	}
	for ch, q := range r.chans {
		if q == (calls.Participant{}) {
			r.chans[ch] = p
			return ch
		}
	}
	return -1
}

func containsParticipant(ps []calls.Participant, p calls.Participant) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// tick pulls one frame from every tap and writes it (the Recorder drops it while paused).
func (r *botRecording) tick() {
	for _, rp := range r.parties {
		rp.pcm = rp.tap.rx.Pull(rp.pcm[:0])
	}
	if r.chans != nil {
		clear(r.frames)
		for _, rp := range r.parties {
			if rp.ch >= 0 {
				r.frames[rp.ch] = rp.pcm
			}
		}
		r.rec.Write(r.frames...)
		return
	}
	r.in = r.in[:0]
	for _, rp := range r.parties {
		r.in = append(r.in, mixer.Input{PCM: rp.pcm})
	}
	for len(r.out) < len(r.in) {
		r.out = append(r.out, make([]int16, audio.FrameSamples))
	}
	r.mix.MixPCM(r.in, r.out)
	r.rec.Write(r.mix.Mixed())
}

// Pause implements calls.RecordingHandle.
func (r *botRecording) Pause() { r.rec.Pause() }

// Resume implements calls.RecordingHandle.
func (r *botRecording) Resume() { r.rec.Resume() }

// Ended implements calls.RecordingHandle.
func (r *botRecording) Ended() <-chan struct{} { return r.ended }

// Stop implements calls.RecordingHandle: the taps come off, the file is finished.
func (r *botRecording) Stop() calls.RecordingResult {
	r.once.Do(func() {
		close(r.stop)
		<-r.done
		for _, rp := range r.parties {
			rp.pt.tap.CompareAndSwap(rp.tap, nil)
		}
		res := r.rec.Stop()
		r.res = calls.RecordingResult{Duration: res.Duration, Bytes: res.Bytes, Err: res.Err,
			Channels: r.chans, Participants: r.seen}
	})
	return r.res
}
