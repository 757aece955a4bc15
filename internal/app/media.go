package app

import (
	"github.com/telgw/telgw/internal/media/playsrc"
	"github.com/telgw/telgw/internal/media/rtpmedia"
	"github.com/telgw/telgw/internal/media/speech"
	"github.com/telgw/telgw/internal/sip"
)

// setupMedia builds what bot calls play and listen with (Call Automation's media operations):
// the RTP pacing scheduler, the prompt fetcher (FileSource URLs fetched through the webhook
// SSRF guard: webhooks.allowPrivate and allowCIDRs apply) and espeak-ng for TextSource. The
// building blocks' defaults are used (docs/MEDIA.md); without espeak-ng text sources fail.
func (a *App) setupMedia() (*sip.MediaDeps, error) {
	guard, err := a.webhookGuard()
	if err != nil {
		return nil, err
	}
	pcfg := playsrc.DefaultConfig()
	fetcher, err := playsrc.New(guard.Client(pcfg.Timeout), pcfg)
	if err != nil {
		return nil, err
	}
	sched, err := rtpmedia.NewScheduler(rtpmedia.DefaultConfig())
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, sched.Close)
	md := &sip.MediaDeps{Scheduler: sched, Fetcher: fetcher}
	if es, err := speech.NewEspeak(speech.DefaultEspeakConfig()); err == nil {
		md.Synth = es
	} else {
		a.Log.Warn("no speech synthesiser: text play sources will fail", "err", err)
	}
	return md, nil
}
