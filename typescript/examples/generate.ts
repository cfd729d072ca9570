import Chamelaion from 'chamelaion';
const client = new Chamelaion({
apiKey: process.env['CHAMELAION_API_KEY'], // This is the default and can be omitted
});
const lipsyncGenerate = await client.lipsync.generate({
inputs: [
{ type: 'video', url: 'https://cdn.example.com/episodes/42.mp4' },
{ type: 'audio', url: 'https://cdn.example.com/dubs/42-japanese.wav' },
],
reference_id: 'dub-episode-42',
});
console.log(lipsyncGenerate.request_id);
