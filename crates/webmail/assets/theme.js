// Light, dark or the system's choice (prefers-color-scheme).
export function theme() {
  return localStorage.getItem('lb.theme') || 'system';
}

export function applyTheme(t = theme()) {
  localStorage.setItem('lb.theme', t);
  if (t === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
}
