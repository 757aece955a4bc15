package app

import (
	"errors"
	"os"
	"os/exec"

	"github.com/telgw/telgw/internal/media/playsrc"
	"github.com/telgw/telgw/internal/media/rtpmedia"
	"github.com/telgw/telgw/internal/media/speech"
	"github.com/telgw/telgw/internal/sip"
)

// setupMedia builds what bot calls play and listen with (Call Automation's media operations):
// the RTP pacing scheduler, the prompt fetcher (FileSource URLs fetched through the webhook
// SSRF guard: webhooks.allowPrivate and allowCIDRs apply), espeak-ng for TextSource and
// SsmlSource and pocketsphinx for choices and speech recognitions, as media.* configures them;
// without espeak-ng text sources fail (PlayFailed), without pocketsphinx (or its en-US
// dictionary) choices and speech recognitions answer 400.
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
	sc := mc.SphinxConfig()
	_, lookErr := exec.LookPath(sc.Path)
	_, dictErr := os.Stat(sc.Dict)
	if ps, err := speech.NewPocketsphinx(sc); err == nil && lookErr == nil && dictErr == nil {
		md.ASR = ps
	} else {
		a.Log.Warn("no speech recogniser: choices and speech recognitions will answer 400", "err", errors.Join(err, lookErr, dictErr))
	}
	return md, nil
}
