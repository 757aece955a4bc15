package config

import "fmt"

// Push configures incoming-call push notifications (internal/push).
type Push struct {
	// FCM enables Firebase Cloud Messaging HTTP v1.
	FCM *FCM `yaml:"fcm"`
	// APNs enables Apple Push Notification service VoIP pushes.
	APNs *APNs `yaml:"apns"`
}

// FCM configures the FCM HTTP v1 provider.
type FCM struct {
	// ProjectID is the Firebase project id.
	ProjectID string `yaml:"projectId"`
	// ServiceAccountFile is the service account key JSON.
	ServiceAccountFile string `yaml:"serviceAccountFile"`
	// Endpoint overrides https://fcm.googleapis.com (tests, proxies).
	Endpoint string `yaml:"endpoint"`
}

// APNs configures the APNs provider (token-based auth).
type APNs struct {
	TeamID string `yaml:"teamId"`
	KeyID  string `yaml:"keyId"`
	// KeyFile is the .p8 signing key.
	KeyFile string `yaml:"keyFile"`
	// Topic is the app bundle id (".voip" is appended for VoIP pushes).
	Topic string `yaml:"topic"`
	// Endpoint overrides https://api.push.apple.com (use https://api.sandbox.push.apple.com for
	// development builds).
	Endpoint string `yaml:"endpoint"`
}

func (p *Push) validate() []error {
	var errs []error
	if f := p.FCM; f != nil {
		if f.ProjectID == "" {
			errs = append(errs, fmt.Errorf("push.fcm.projectId: must not be empty"))
		}
		if f.ServiceAccountFile == "" {
			errs = append(errs, fmt.Errorf("push.fcm.serviceAccountFile: must not be empty"))
		}
	}
	if a := p.APNs; a != nil {
		for key, v := range map[string]string{"teamId": a.TeamID, "keyId": a.KeyID, "keyFile": a.KeyFile, "topic": a.Topic} {
			if v == "" {
				errs = append(errs, fmt.Errorf("push.apns.%s: must not be empty", key))
			}
		}
	}
	return errs
}
