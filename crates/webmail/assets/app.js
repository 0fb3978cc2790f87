// Letterbox webmail entry point (placeholder; the client is being written).
const app = document.getElementById('app');
app.textContent = 'Letterbox';
