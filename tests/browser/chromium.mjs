// Debian's chromium as both browser scripts launch it (pages.mjs for the
// page checks, venue-phone.mjs for the phone in the venue).

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// Without the background-networking flags chromium keeps trying Google's
// hosts, which this machine's closed network refuses.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
