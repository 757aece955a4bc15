package app

import (
	"github.com/telgw/telgw/internal/media/playsrc"
	"github.com/telgw/telgw/internal/media/rtpmedia"
	"github.com/telgw/telgw/internal/media/speech"
	"github.com/telgw/telgw/internal/sip"
)

// setupMedia builds what bot calls play and listen with (Call Automation's media operations):
// the RTP pacing scheduler, the prompt fetcher (FileSource URLs fetched through the webhook
// SSRF guard: webhooks.allowPrivate and allowCIDRs apply) and espeak-ng for TextSource, as
// media.* configures them; without espeak-ng text sources fail (PlayFailed).
func (a *App) setupMedia() (*sip.MediaDeps, error) {
	guard, err := a.webhookGuard()
	if err != nil {
		return nil, err
	}
	mc := a.Config.Media
	pcfg := mc.PlayConfig()
	fetcher, err := playsrc.New(guard.Client(pcfg.Timeout), pcfg)
	if err != nil {
		return nil, err
	}
	sched, err := rtpmedia.NewScheduler(mc.PacingConfig())
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, sched.Close)
	if err := sched.Stats().RealtimeErr; err != nil {
		a.Log.Warn("media.realtimePriority refused: prompts are paced by ordinary timers", "err", err)
	}
	md := &sip.MediaDeps{Scheduler: sched, Fetcher: fetcher}
	if es, err := speech.NewEspeak(mc.EspeakConfig()); err == nil {
		md.Synth = es
	} else {
		a.Log.Warn("no speech synthesiser: text play sources will fail", "err", err)
	}
	return md, nil
}
