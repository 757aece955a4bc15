// Shared by the Call Automation bots the e2e tests drive (callautomation_*.mjs).

// queue collects items and hands out the first one matching a predicate.
export function queue(name) {
  const items = [];
  const waiters = [];
  return {
    push(x) {
      items.push(x);
      for (const w of [...waiters]) w();
    },
    next(pred = () => true, ms = 20000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const i = items.findIndex(pred);
          if (i < 0) return false;
          const [x] = items.splice(i, 1);
          waiters.splice(waiters.indexOf(check), 1);
          clearTimeout(timer);
          resolve(x);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          reject(new Error(`timed out waiting for ${name}: have ${JSON.stringify(items.map((x) => x.kind ?? x.eventType))}`));
        }, ms);
        waiters.push(check);
        check();
      });
    },
  };
}
